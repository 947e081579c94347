"""Build an experiment (context, network, data, optimizers, runner) from a config dict and run it.

The config is NNablaNAS's JSON-era experiment file: ``dataloader``, ``network``, ``optimizer``,
``hparams``, plus ``args`` (the run options NNablaNAS took as flags: ``algorithm``, ``search``,
``context``, ``device_id``, ``type_config``, ``output_path``, ``save_nnp``). Components are looked
up by name in NNablaNAS's own tables, where ``nnabla_nas_detofa.registry`` put ours.
"""
import copy
import inspect
import os
import time

import nnabla as nn

from ..space import SupernetConfig
from .context import make_context, set_hydra_context, use_context

TOP_KEYS = ("args", "dataloader", "network", "optimizer", "hparams")
ARG_DEFAULTS = {"algorithm": None, "search": None, "context": "cpu", "device_id": "0", "type_config": "float",
                "output_path": None, "save_nnp": False}


class ExperimentError(ValueError):
    """A problem in the experiment file; the message names the key path."""


class SingleProcess:
    """The communicator of a run without MPI (NNablaNAS's wrapper prints a warning and probes MPI)."""

    def __init__(self, ctx):
        self.n_procs, self.rank, self.ctx, self.comm = 1, 0, ctx, None

    def all_reduce(self, params, division, inplace):
        pass


def _under_mpi() -> bool:
    return any(k in os.environ for k in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"))


def make_communicator(ctx):
    if not _under_mpi():
        return SingleProcess(ctx)
    from nnabla_nas.utils.helper import CommunicatorWrapper
    return CommunicatorWrapper(ctx)


def check_experiment(conf, source="experiment"):
    """Validate the structure and fill defaults; returns a deep copy."""
    if not isinstance(conf, dict):
        raise ExperimentError(f"{source}: the top level must be an object with keys {list(TOP_KEYS)}")
    conf = copy.deepcopy(conf)
    conf.pop("comment", None)
    unknown = sorted(set(conf) - set(TOP_KEYS))
    if unknown:
        raise ExperimentError(f"{source}: unknown top-level key(s) {unknown}; expected {list(TOP_KEYS)}")
    for key in ("dataloader", "network", "hparams"):
        if key not in conf:
            raise ExperimentError(f"{source}: missing key '{key}'")
        if not isinstance(conf[key], dict):
            raise ExperimentError(f"{source}: '{key}' must be an object")
    for key in ("dataloader", "network"):
        if len(conf[key]) != 1:
            raise ExperimentError(f"{source}: '{key}' must name exactly one entry, got {list(conf[key])}")
    conf.setdefault("optimizer", {})
    args = dict(ARG_DEFAULTS)
    given = conf.get("args", {})
    if not isinstance(given, dict):
        raise ExperimentError(f"{source}: 'args' must be an object")
    bad = sorted(set(given) - set(ARG_DEFAULTS))
    if bad:
        raise ExperimentError(f"{source}: unknown key(s) in 'args': {bad}; known: {sorted(ARG_DEFAULTS)}")
    args.update({k: v for k, v in given.items() if v is not None})
    conf["args"] = args
    if not args["algorithm"]:
        raise ExperimentError(f"{source}: missing 'args.algorithm' (or the -a flag)")
    hp = conf["hparams"]
    for k in ("epoch", "batch_size_train", "batch_size_valid", "mini_batch_train", "mini_batch_valid"):
        if k not in hp:
            raise ExperimentError(f"{source}: missing key 'hparams.{k}'")
        if isinstance(hp[k], bool) or not isinstance(hp[k], int) or hp[k] < (0 if k == "epoch" else 1):
            raise ExperimentError(f"{source}: 'hparams.{k}'={hp[k]!r} must be a positive integer")
    return conf


def _input_size(conf, source):
    name, dl = next(iter(conf["dataloader"].items()))
    size = dl.get("input_size")
    if not isinstance(size, int) or size % 32 or size <= 0:
        raise ExperimentError(f"{source}: 'dataloader.{name}.input_size'={size!r} must be a positive multiple of 32")
    return size


def derive_shapes(conf, source):
    """CenterNet placeholders: image (3,S,S); targets heatmap (C,S/4,S/4), wh, reg (2,..), mask (1,..)."""
    hp = conf["hparams"]
    size = _input_size(conf, source)
    net_name, net = next(iter(conf["network"].items()))
    c = net.get("num_classes", SupernetConfig().num_classes)
    h = size // 4
    shapes = {"input_shapes": [[3, size, size]],
              "target_shapes": [[c, h, h], [2, h, h], [2, h, h], [1, h, h]]}
    for k, v in shapes.items():
        if k in hp and hp[k] != v:
            raise ExperimentError(f"{source}: 'hparams.{k}'={hp[k]} disagrees with input_size {size} and "
                                  f"num_classes {c} (expected {v}); remove it to derive it")
        hp[k] = v


def check_batches(hp, n_procs, source):
    for kind in ("train", "valid"):
        bs, mbs = hp[f"batch_size_{kind}"], hp[f"mini_batch_{kind}"]
        if bs % n_procs:
            raise ExperimentError(f"{source}: 'hparams.batch_size_{kind}'={bs} must divide by the {n_procs} processes")
        if (bs // n_procs) % mbs:
            raise ExperimentError(f"{source}: per-process batch {bs // n_procs} must divide by "
                                  f"'hparams.mini_batch_{kind}'={mbs}")


def _construct(factory, attrs, where):
    try:
        sig = inspect.signature(factory)
        has_kw = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
        bad = [] if has_kw else sorted(set(attrs) - set(sig.parameters))
    except (TypeError, ValueError):
        bad = []
    if bad:
        raise ExperimentError(f"{where}: unknown key(s) {bad}")
    try:
        return factory(**attrs)
    except TypeError as err:  # argument mistakes only; other TypeErrors are bugs and keep their traceback
        msg = str(err)
        if any(s in msg for s in ("unknown argument", "unexpected keyword", "required positional", "missing")):
            raise ExperimentError(f"{where}: {msg}") from None
        raise


def build_network(conf, search, source):
    import nnabla_nas.contrib as contrib
    name, attrs = next(iter(conf["network"].items()))
    mod = contrib.__dict__.get(name)
    if mod is None or not hasattr(mod, "SearchNet"):
        known = [n for n in contrib.__all__ if n.startswith("detofa")]
        raise ExperimentError(f"{source}: unknown network 'network.{name}'; DetOFA networks: {known}")
    factory = mod.SearchNet if search else mod.TrainNet
    return _construct(factory, dict(attrs), f"{source}: network.{name}")


def build_dataloaders(conf, comm, source):
    import nnabla_nas.dataset as dataset
    name, attrs = next(iter(conf["dataloader"].items()))
    mod = dataset.__dict__.get(name)
    if mod is None or not hasattr(mod, "DataLoader"):
        raise ExperimentError(f"{source}: unknown data loader 'dataloader.{name}'; "
                              f"known: {[n for n in dataset.__all__]}")
    hp, search = conf["hparams"], bool(conf["args"]["search"])
    where = f"{source}: dataloader.{name}"
    if hasattr(mod.DataLoader, "check_options"):  # fail on a bad option before reading any data
        try:
            mod.DataLoader.check_options(dict(attrs), where)
        except ValueError as err:
            raise ExperimentError(str(err)) from None

    def mk(searching, training, bs):
        return _construct(mod.DataLoader, dict(attrs, searching=searching, training=training, batch_size=bs,
                                               communicator=comm), where)

    return {"train": mk(search, True, hp["mini_batch_train"]),
            "valid": mk(search, False, hp["mini_batch_valid"]),
            "test": mk(False, False, hp["mini_batch_valid"])}


def build_optimizers(conf, loaders, n_procs, source):
    from .optim import OptimizerConfigError, make_optimizer
    hp = conf["hparams"]
    spec = conf["optimizer"] or {"train": {"name": "Adam", "lr": 5e-4}}
    iters = max(1, len(loaders["train"]) // (hp["batch_size_train"] // n_procs))
    out = {}
    for key, s in spec.items():
        try:
            out[key] = make_optimizer(s, int(hp["epoch"]), iters, f"optimizer.{key}")
        except OptimizerConfigError as err:
            raise ExperimentError(f"{source}: {err}") from None
    if "train" not in out:
        raise ExperimentError(f"{source}: 'optimizer' needs a 'train' entry")
    return out


def run_experiment(conf, source="experiment"):
    """Run one experiment; returns what the runner's ``run()`` returns."""
    import nnabla_nas.runner as runner_tables

    from .. import register
    register()

    conf = check_experiment(conf, source)
    args = conf["args"]
    alg = args["algorithm"]
    cls = runner_tables.__dict__.get(alg)
    if cls is None or alg not in runner_tables.__all__:
        raise ExperimentError(f"{source}: unknown algorithm 'args.algorithm'={alg!r}; "
                              f"DetOFA runners: {[n for n in runner_tables.__all__ if n.startswith('DetOFA')]}")
    if args["search"] is None:
        args["search"] = bool(getattr(cls, "SEARCH", True))
    if not args["output_path"]:
        args["output_path"] = os.path.join("log", alg)
    derive_shapes(conf, source)

    ctx, event = make_context(args["context"], args["device_id"], args["type_config"])
    comm = make_communicator(ctx)
    check_batches(conf["hparams"], comm.n_procs, source)
    use_context(comm.ctx)
    set_hydra_context(".")
    args.update({"comm": comm, "event": event})

    name, dl = next(iter(conf["dataloader"].items()))
    prepare_synthetic(dl, rank=comm.rank, where=f"{source}: dataloader.{name}")
    model = build_network(conf, args["search"], source)
    loaders = build_dataloaders(conf, comm, source)
    optimizers = build_optimizers(conf, loaders, comm.n_procs, source)
    t0 = time.time()
    runner = cls(model, optimizer=optimizers, regularizer={}, dataloader=loaders, hparams=conf["hparams"], args=args)
    result = runner.run()
    if comm.rank == 0:
        nn.logger.info(f"{alg} finished in {time.time() - t0:.1f}s; outputs in {runner._abs_output_path}")
    return result


def prepare_synthetic(dl_args: dict, rank: int = 0, where: str = "dataloader"):
    """``"synthetic": {...}`` in the loader options makes the embedded demo data set on first use
    (rank 0 writes it; other ranks wait for its completion marker)."""
    spec = dl_args.pop("synthetic", None)
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ExperimentError(f"{where}.synthetic: expected an object of make-synthetic-voc options")
    root = dl_args.get("root")
    if not root:
        raise ExperimentError(f"{where}: 'synthetic' needs 'root' (where to write the data set)")
    marker = os.path.join(root, "SYNTHETIC_COMPLETE")
    if os.path.isfile(marker):
        return root
    if rank == 0:
        from ..data.synthetic import make_synthetic_voc
        try:
            make_synthetic_voc(root, **dict(spec, overwrite=True))
        except TypeError as err:
            raise ExperimentError(f"{where}: {err}") from None
        with open(marker, "w") as f:
            f.write("ok\n")
    else:
        while not os.path.isfile(marker):
            time.sleep(1.0)
    return root
