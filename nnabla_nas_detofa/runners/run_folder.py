"""A run's folder as later tools (``export``) read it: what the run was, rebuilt from its own files.

A run folder holds ``run.json`` (runner, network settings, input size: what the folder holds),
``experiment.json`` (the experiment as run: data loader options, hparams) and, once the run has
measured a path, ``measurement_sets.json`` (the image ids of its fixed BatchNorm calibration and
validation sets). From them :class:`RunFolder` gives the network settings, the input size, the
search space(s) the run trained or sampled, and the run's BatchNorm calibration set, built by
the same functions the run used (``launch.build_dataloaders``, ``path_eval.measurement_sets``),
so a path re-calibrated here has the statistics the run's own measurement of it had. Nothing is
written into the folder.
"""
import os
from typing import List, Optional, Tuple

from ..evaluation.path_eval import MEASUREMENT_FILE, measurement_sets
from ..reading import read_json
from ..space import Arch, ConfigError, SpaceError, SupernetConfig, check_input_size, space_from_spec
from .launch import (EXPERIMENT_FILE, RUN_FILE, ExperimentError, SingleProcess, build_dataloaders, check_batches,
                     check_data_agrees, check_experiment, check_hparams, derive_shapes, loader_module,
                     runner_class)


class RunFolder:
    """The run in ``folder`` (see module doc); ``open`` checks every file before any data is read."""

    def __init__(self, folder: str, run: dict, conf: dict, runner, config: SupernetConfig, input_size: int):
        self.folder, self.run, self.conf, self.runner = folder, run, conf, runner
        self.config, self.input_size = config, input_size
        self.source = os.path.join(folder, EXPERIMENT_FILE)

    @classmethod
    def open(cls, folder: str, hint: str = "") -> "RunFolder":
        """``hint``: appended to the message when the folder is not a run folder (e.g. which flag)."""
        from .. import register
        register()
        if not os.path.isdir(folder):
            raise ExperimentError(f"{folder}: no such run folder{hint}")
        missing = [f for f in (RUN_FILE, EXPERIMENT_FILE) if not os.path.isfile(os.path.join(folder, f))]
        if missing:
            raise ExperimentError(f"{folder}: not a run folder (no {' or '.join(missing)}){hint}")
        run_path = os.path.join(folder, RUN_FILE)
        run = read_json(run_path, ExperimentError, "run file")
        if not isinstance(run, dict) or not isinstance(run.get("network"), dict):
            raise ExperimentError(f"{run_path}: expected an object with 'network' settings and 'input_size'")
        try:
            config = SupernetConfig.from_dict(run["network"], f"{run_path}: network")
            input_size = check_input_size(run.get("input_size"), f"{run_path}: input_size")
        except ConfigError as err:
            raise ExperimentError(str(err)) from None
        source = os.path.join(folder, EXPERIMENT_FILE)
        conf = check_experiment(read_json(source, ExperimentError, "experiment file"), source)
        runner = runner_class(conf["args"]["algorithm"], source)
        derive_shapes(conf, source)
        check_hparams(conf, runner, source)
        loader_module(conf, source)
        if conf["hparams"]["input_shapes"][0][-1] != input_size:
            raise ExperimentError(f"{source}: input size {conf['hparams']['input_shapes'][0][-1]} disagrees with "
                                  f"{run_path} ({input_size})")
        return cls(folder, run, conf, runner, config, input_size)

    # --- the search space ---------------------------------------------------------------------
    def spaces(self) -> List:
        """The search space(s) of the run: its ``space_schedule`` phases, or its ``space``."""
        hp = self.conf["hparams"]
        try:
            if hp.get("space_schedule"):
                return [space_from_spec(item[0], f"{self.source}: hparams.space_schedule[{i}][0]")
                        for i, item in enumerate(hp["space_schedule"])]
            return [space_from_spec(hp.get("space", "ofa"), f"{self.source}: hparams.space")]
        except SpaceError as err:
            raise ExperimentError(str(err)) from None

    def check_arch(self, arch: Arch, where: str = "arch") -> Arch:
        """``arch`` if one of the run's spaces holds it; ExperimentError naming them otherwise."""
        spaces = self.spaces()
        if not any(s.contains(arch) for s in spaces):
            raise ExperimentError(f"{where}: {arch.to_json()} is outside the search space of the run in "
                                  f"{self.folder} ({', '.join(repr(s.name) for s in spaces)}): the supernet "
                                  f"never trained that path")
        return arch

    # --- the BatchNorm calibration set --------------------------------------------------------
    def calibration_set(self) -> Tuple[Optional[object], dict]:
        """(the run's calibration set as a ``FixedImageSet``, or None when the run re-calibrates on no
        images; the data loaders it reads through, to ``close()`` after use).

        The loaders are built as the run built them (same options, same ``searching`` flag), and the
        set is ``measurement_sets`` of the run: the ids stored in the folder's ``measurement_sets.json``,
        or, before the run stored any, the same seeded draw (the folder is not written)."""
        conf, hp, source = self.conf, self.conf["hparams"], self.source
        if not hp["bn_calib_images"]:
            return None, {}
        name = next(iter(conf["dataloader"]))
        conf["dataloader"][name].pop("synthetic", None)  # data is never made here, only read
        check_batches(hp, 1, source)
        import nnabla as nn
        comm = SingleProcess(nn.get_current_context())
        searching = bool(self.runner.needs_dval(hp)) if hasattr(self.runner, "needs_dval") \
            else bool(conf["args"]["search"])
        loaders = build_dataloaders(conf, comm, searching, source)
        try:
            check_data_agrees(conf, loaders, source)
            stored_path = os.path.join(self.folder, MEASUREMENT_FILE)
            stored = read_json(stored_path, ExperimentError, "measurement file") \
                if os.path.isfile(stored_path) else None
            # a run without a validation set (a static network's training) stored none
            valid = loaders["valid"] if stored is None or stored.get("valid_split") is not None else None
            calib, _ = measurement_sets(loaders["train"], valid, self.folder if stored is not None else None,
                                        hp["bn_calib_images"], hp["valid_images"] if valid is not None else 0,
                                        hp["bn_calib_batch_size"] or hp["mini_batch_valid"], hp["seed"],
                                        hp["measurement_cache_mb"])
        except BaseException:
            close_loaders(loaders)
            raise
        return calib, loaders


def close_loaders(loaders: dict) -> None:
    for loader in loaders.values():
        close = getattr(loader, "close", None)
        if close is not None:
            close()
