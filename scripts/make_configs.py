"""Write nnabla_nas_detofa/configs/experiment/detofa/<name>.yaml for every examples/<name>.json.

Run after editing an example: `.venv/bin/python scripts/make_configs.py` (tests/test_configs.py
fails while the two disagree)."""
import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from nnabla_nas_detofa.atomic import write_text_atomic  # noqa: E402
from nnabla_nas_detofa.cli.hydra_configs import experiment_path, experiment_yaml  # noqa: E402

if __name__ == "__main__":
    for path in sorted(glob.glob(os.path.join(ROOT, "examples", "*.json"))):
        stem = os.path.splitext(os.path.basename(path))[0]
        with open(path, encoding="utf-8") as f:
            conf = json.load(f)
        write_text_atomic(experiment_path(stem), experiment_yaml(conf, stem))
        print(os.path.relpath(experiment_path(stem), ROOT))
