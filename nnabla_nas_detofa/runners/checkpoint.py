"""Atomic checkpoints: a run killed at any instant resumes from the last complete checkpoint.

Files are written into ``checkpoint.new/``; the switch to ``checkpoint/`` is two renames, and a
``COMPLETE`` marker written last tells a finished folder from a half-written one.
"""
import os
import shutil
from typing import Callable, Dict, Optional

from ..atomic import write_json_atomic
from ..reading import read_json

MARKER = "COMPLETE"


def _complete(path: str) -> bool:
    return os.path.isfile(os.path.join(path, MARKER)) and os.path.isfile(os.path.join(path, "checkpoint.json"))


def save_checkpoint(root: str, info: Dict, writers: Dict[str, Callable[[str], None]]) -> str:
    """Write ``writers[name](path)`` files plus ``checkpoint.json`` (= ``info``) under ``root/checkpoint``."""
    final = os.path.join(root, "checkpoint")
    new, old = final + ".new", final + ".old"
    shutil.rmtree(new, ignore_errors=True)
    os.makedirs(new)
    for name, write in writers.items():
        write(os.path.join(new, name))
    write_json_atomic(os.path.join(new, "checkpoint.json"), info, indent=1)
    with open(os.path.join(new, MARKER), "w") as f:
        f.write("ok\n")
    shutil.rmtree(old, ignore_errors=True)
    if os.path.isdir(final):
        os.replace(final, old)
    os.replace(new, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def find_checkpoint(root: str) -> Optional[str]:
    """The newest complete checkpoint folder under ``root`` (also after a kill between renames)."""
    for name in ("checkpoint", "checkpoint.new", "checkpoint.old"):
        path = os.path.join(root, name)
        if _complete(path):
            return path
    return None


class CheckpointError(ValueError):
    """A checkpoint of the output folder that cannot be read; the message names the file."""


def load_checkpoint_info(path: str) -> Dict:
    """``checkpoint.json`` of a checkpoint folder: an object (CheckpointError naming the file otherwise)."""
    f = os.path.join(path, "checkpoint.json")
    info = read_json(f, CheckpointError, "checkpoint file")
    if not isinstance(info, dict):
        raise CheckpointError(f"{f}: expected an object (the checkpoint is damaged: remove {path} to start over)")
    return info
