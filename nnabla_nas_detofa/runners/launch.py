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

from ..atomic import write_json_atomic
from ..data.synthetic import SYNTHETIC_MARKER, check_synthetic_options, synthetic_state
from ..reading import read_json
from ..space import ConfigError, SupernetConfig, check_input_size
from . import RUNNERS
from .context import CONTEXTS, make_context, set_hydra_context, use_context
from .schema import Bool, Choice, Custom, SchemaError, Str, unknown_key_message, validate

RUN_FILE = "run.json"
EXPERIMENT_FILE = "experiment.json"   # the experiment as run (itself a runnable experiment file)

TOP_KEYS = ("args", "dataloader", "network", "optimizer", "hparams")
ARGS = {
    "algorithm": Str(nullable=True, default=None),
    "search": Bool(nullable=True, default=None),
    "context": Choice(CONTEXTS, default="cpu"),
    "device_id": Custom(lambda v, w: _device_id(v, w), "a GPU index (integer or digit string)", default="0"),
    "type_config": Choice(("float", "half", "mixed_half"), default="float"),
    "output_path": Str(nullable=True, default=None),
    "save_nnp": Bool(default=False),
}


class ExperimentError(ValueError):
    """A problem in the experiment file; the message names the key path."""


def _device_id(v, where):
    if isinstance(v, bool) or not (isinstance(v, int) and v >= 0 or isinstance(v, str) and v.isdigit()):
        raise ValueError(f"{where}={v!r}: expected a GPU index (integer or digit string)")
    return str(v)


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


def _schema(source, fn, *a):
    """``fn(*a)`` with a SchemaError turned into an ExperimentError that starts with ``source``."""
    try:
        return fn(*a)
    except SchemaError as err:
        raise ExperimentError(f"{source}: {err}") from None


def check_experiment(conf, source="experiment"):
    """Validate the structure and ``args``, fill defaults; returns a deep copy."""
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
        (name, attrs), = conf[key].items()
        if not isinstance(attrs, dict):
            raise ExperimentError(f"{source}: '{key}.{name}' must be an object")
    conf.setdefault("optimizer", {})
    if not isinstance(conf["optimizer"], dict):
        raise ExperimentError(f"{source}: 'optimizer' must be an object of solvers, e.g. "
                              '{"train": {"name": "Adam", "lr": 5e-4}}')
    given = conf.get("args", {})
    if not isinstance(given, dict):
        raise ExperimentError(f"{source}: 'args' must be an object")
    args = _schema(source, validate, {k: v for k, v in given.items() if v is not None or k not in ARGS}, ARGS,
                   "args")
    conf["args"] = args
    if not args["algorithm"]:
        raise ExperimentError(f"{source}: missing 'args.algorithm' (or the -a flag)")
    return conf


def runner_class(name: str, source: str):
    import nnabla_nas.runner as runner_tables
    cls = runner_tables.__dict__.get(name)
    if cls is None or name not in runner_tables.__all__:
        ours = [n for n in runner_tables.__all__ if n in RUNNERS]
        raise ExperimentError(f"{source}: unknown algorithm 'args.algorithm'={name!r}; DetOFA runners: {ours}")
    return cls


def check_hparams(conf, cls, source):
    """The runner's hparams schema (``DetOFARunner.check_hparams``) over ``conf['hparams']``."""
    if hasattr(cls, "check_hparams"):
        conf["hparams"] = _schema(source, cls.check_hparams, conf["hparams"], "hparams")
    return conf["hparams"]


def _input_size(conf, source):
    name, dl = next(iter(conf["dataloader"].items()))
    size = dl.get("input_size", 384)
    try:
        return check_input_size(size, f"dataloader.{name}.input_size")
    except ConfigError as err:
        raise ExperimentError(f"{source}: {err}") from None


def network_settings(conf, source) -> SupernetConfig:
    """The supernet settings of the network entry (SupernetConfig), checked before any work."""
    name, net = next(iter(conf["network"].items()))
    try:
        cfg, _ = SupernetConfig.split_kwargs(net, f"network.{name}")
    except ConfigError as err:
        raise ExperimentError(f"{source}: {err}") from None
    return cfg


def derive_shapes(conf, source):
    """CenterNet placeholders: image (3,S,S); targets heatmap (C,S/4,S/4), wh, reg (2,..), mask (1,..)."""
    hp = conf["hparams"]
    size = _input_size(conf, source)
    c = network_settings(conf, source).num_classes
    h = size // 4
    shapes = {"input_shapes": [[3, size, size]],
              "target_shapes": [[c, h, h], [2, h, h], [2, h, h], [1, h, h]]}
    for k, v in shapes.items():
        if hp.get(k) is not None and hp[k] != v:
            raise ExperimentError(f"{source}: 'hparams.{k}'={hp[k]} disagrees with input_size {size} and "
                                  f"num_classes {c} (expected {v}); remove it to derive it")
        hp[k] = v


def check_batches(hp, n_procs, source):
    """``batch_size_*`` are global (NNablaNAS): each of the ``n_procs`` processes takes its share, in
    forward passes of ``mini_batch_*`` images (default: the whole share)."""
    for kind in ("train", "valid"):
        bs = hp[f"batch_size_{kind}"]
        if bs % n_procs:
            raise ExperimentError(f"{source}: 'hparams.batch_size_{kind}'={bs} must divide by the {n_procs} processes")
        per = bs // n_procs
        mbs = hp.get(f"mini_batch_{kind}")
        if mbs is None:
            hp[f"mini_batch_{kind}"] = mbs = per
        if per % mbs:
            raise ExperimentError(f"{source}: per-process batch {per} ('hparams.batch_size_{kind}'={bs} over "
                                  f"{n_procs} process(es)) must divide by 'hparams.mini_batch_{kind}'={mbs}; "
                                  f"leave mini_batch_{kind} out to use the whole per-process batch")


def check_output_folder(out: str, conf, source) -> None:
    """The output folder is a folder (or absent) and, when it holds a run, a run of the same network
    and input size; ``run.json`` records what the folder holds."""
    path = os.path.abspath(out)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ExperimentError(f"{source}: output path {out!r} is a file, not a folder")
    ident = {"algorithm": conf["args"]["algorithm"], "network": network_settings(conf, source).to_dict(),
             "input_size": _input_size(conf, source)}
    info = os.path.join(path, RUN_FILE)
    if os.path.isfile(info):
        have = read_json(info, ExperimentError, "run identity file")
        if not isinstance(have, dict):
            raise ExperimentError(f"{info}: expected an object with {sorted(ident)} (the file of another tool? "
                                  f"give a new output folder with -o)")
        if {k: have.get(k) for k in ident} != ident:
            diff = [k for k in ident if have.get(k) != ident[k]]
            raise ExperimentError(f"{source}: output folder {out!r} holds a run with other settings ({', '.join(diff)}: "
                                  f"{ {k: have.get(k) for k in diff} }); give a new output folder (-o) to start "
                                  f"a new run")


def write_run_identity(out: str, conf, source) -> None:
    """``run.json`` (what the folder holds: runner, network settings, input size) on the first run,
    and ``experiment.json`` (the experiment as run, defaults filled in) every run: later tools
    (export, search, report) rebuild the network and find the data from them."""
    folder = os.path.abspath(out)
    info = os.path.join(folder, RUN_FILE)
    if not os.path.isfile(info):
        write_json_atomic(info, {"algorithm": conf["args"]["algorithm"],
                                 "network": network_settings(conf, source).to_dict(),
                                 "input_size": _input_size(conf, source)}, indent=1)
    runnable = {k: v for k, v in conf.items() if k != "args"}
    runnable["args"] = {k: v for k, v in conf["args"].items() if k not in ("comm", "event")}
    runnable["comment"] = f"as run from {os.path.abspath(source) if os.path.isfile(source) else source}"
    write_json_atomic(os.path.join(folder, EXPERIMENT_FILE), runnable, indent=1)


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


def build_network(conf, search, source, bn_calibration=None):
    """NNablaNAS's SearchNet (the supernet) or TrainNet (one static path) of the network entry;
    ``bn_calibration``: image batches a TrainNet made from supernet weights re-calibrates on."""
    import nnabla_nas.contrib as contrib
    name, attrs = next(iter(conf["network"].items()))
    mod = contrib.__dict__.get(name)
    if mod is None or not hasattr(mod, "SearchNet"):
        known = [n for n in contrib.__all__ if n.startswith("detofa")]
        raise ExperimentError(f"{source}: unknown network 'network.{name}'; DetOFA networks: {known}")
    attrs = dict(attrs)
    if not search and bn_calibration is not None and "bn_calibration" in inspect.signature(mod.TrainNet).parameters:
        attrs["bn_calibration"] = bn_calibration
    factory = mod.SearchNet if search else mod.TrainNet
    return _construct(factory, attrs, f"{source}: network.{name}")


def check_network_entry(conf, source):
    """The network entry's keys other than the supernet settings are arguments of the network's
    SearchNet / TrainNet, and ``space`` / ``arch`` are valid (``arch`` as TrainNet reads it: an
    object, a JSON string or a file of one arch), before any data is read."""
    import nnabla_nas.contrib as contrib

    from ..nets.detofa_resnet50 import resolve_arch
    from ..space import ArchError, SpaceError, space_from_spec
    from ..space.config import CONFIG_KEYS
    name, net = next(iter(conf["network"].items()))
    mod = contrib.__dict__.get(name)
    if mod is None or not hasattr(mod, "SearchNet"):
        return                                            # build_network names the unknown network
    where = f"network.{name}"
    _, rest = SupernetConfig.split_kwargs(net, where)
    named = set()
    for factory in (mod.SearchNet, getattr(mod, "TrainNet", None)):
        try:
            named |= {p.name for p in inspect.signature(factory).parameters.values()
                      if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        except (TypeError, ValueError):
            return
    named.discard("bn_calibration")                       # passed by the launcher, not the file
    for key in rest:
        if key not in named:
            raise ExperimentError(f"{source}: " + unknown_key_message(str(key), sorted(named | set(CONFIG_KEYS)),
                                                                      where))
    try:
        if rest.get("space") is not None:
            space_from_spec(rest["space"], f"{where}.space")
        if rest.get("arch") is not None:
            resolve_arch(rest["arch"], f"{where}.arch")
    except (ArchError, SpaceError) as err:
        raise ExperimentError(f"{source}: {err}") from None


def check_network_files(conf, source):
    """The weight files the network entry names exist (before any data is read); a ``pretrained``
    file is one ``transfer.import_supernet`` reads (by its first bytes: the full import happens
    when the network is built). ``"pretrained": null`` means: from scratch."""
    from ..transfer import OFA_DOWNLOAD, TransferError, sniff
    name, attrs = next(iter(conf["network"].items()))
    if attrs.get("weights") and attrs.get("pretrained"):
        raise ExperimentError(f"{source}: 'network.{name}' gives both 'weights' (a trained DetOFA network) and "
                              f"'pretrained' (an ImageNet supernet to start from): give one of them")
    for key in ("weights", "pretrained"):
        v = attrs.get(key)
        if v is None:
            continue
        if not isinstance(v, str) or not v:
            raise ExperimentError(f"{source}: 'network.{name}.{key}'={v!r}: expected the path of a weight file")
        if not os.path.isfile(v):
            if key == "pretrained":
                raise ExperimentError(f"{source}: 'network.{name}.pretrained'={v!r}: no such file; download "
                                      f"once-for-all's ImageNet supernet {OFA_DOWNLOAD} to that path (or convert it "
                                      f"first with 'python -m nnabla_nas_detofa import-weights'), or set "
                                      f"\"pretrained\": null to train from scratch")
            raise ExperimentError(f"{source}: 'network.{name}.{key}'={v!r}: no such file")
        if key == "pretrained":
            try:
                sniff(v)
            except TransferError as err:
                raise ExperimentError(f"{source}: 'network.{name}.pretrained': {err}") from None


def loader_module(conf, source):
    import nnabla_nas.dataset as dataset
    name, attrs = next(iter(conf["dataloader"].items()))
    mod = dataset.__dict__.get(name)
    if mod is None or not hasattr(mod, "DataLoader"):
        raise ExperimentError(f"{source}: unknown data loader 'dataloader.{name}'; "
                              f"known: {[n for n in dataset.__all__]}")
    if hasattr(mod.DataLoader, "check_options"):  # fail on a bad option before reading any data
        try:
            mod.DataLoader.check_options({k: v for k, v in attrs.items() if k != "synthetic"},
                                         f"{source}: dataloader.{name}")
        except ValueError as err:
            raise ExperimentError(str(err)) from None
    return name, mod


def build_dataloaders(conf, comm, searching, source):
    """train / valid / test loaders. ``searching``: the run measures paths on D_val, so ``train``
    reads the training split without its held-out part and ``valid`` reads that part (see
    ``data.loader``); otherwise ``train`` reads the whole training split."""
    name, mod = loader_module(conf, source)
    attrs = conf["dataloader"][name]
    hp = conf["hparams"]
    where = f"{source}: dataloader.{name}"

    def mk(srch, training, bs):
        return _construct(mod.DataLoader, dict(attrs, searching=srch, training=training, batch_size=bs,
                                               communicator=comm), where)

    return {"train": mk(searching, True, hp["mini_batch_train"]),
            "valid": mk(searching, False, hp["mini_batch_valid"]),
            "test": mk(False, False, hp["mini_batch_valid"])}


def check_data_agrees(conf, loaders, source):
    """The network's classes are the data's."""
    c = network_settings(conf, source).num_classes
    ds = loaders["train"].dataset
    if ds.num_classes != c:
        name = next(iter(conf["network"]))
        raise ExperimentError(f"{source}: 'network.{name}.num_classes'={c} but the data set {ds.root} has "
                              f"{ds.num_classes} classes ({', '.join(ds.class_names[:8])}"
                              f"{', ...' if ds.num_classes > 8 else ''})")


def check_images(loaders, source):
    """Every image file the run will read (train, valid and test splits) exists, has a readable
    header, the size its annotation says and its end marker, before any training step
    (``data.check.verify_images``: no decoding, thousands of images per second)."""
    from ..data.check import verify_images
    records = []
    for key in ("train", "valid", "test"):
        ld = loaders.get(key)
        if ld is None or not hasattr(ld, "dataset"):
            continue
        records.extend(ld.dataset.records)
        if key == "test" and hasattr(ld, "eval_dataset"):
            records.extend(ld.eval_dataset("test").records)
    if not records:
        return
    workers = max(1, int(getattr(loaders["train"], "options", {}).get("num_workers") or 1))
    problems = verify_images(records, workers=workers)   # threads help on cold disks, not on cached files
    if problems:
        more = f" (and {len(problems) - 1} more image problem(s); run check-data to list them)" \
            if len(problems) > 1 else ""
        raise ExperimentError(f"{source}: {problems[0]}{more}")


def check_optimizers(conf, source, cls=None):
    from .optim import OptimizerConfigError, make_optimizer
    spec = conf["optimizer"]
    used = getattr(cls, "OPTIMIZERS", None)
    if used is not None:
        for key in spec:
            if key not in used:
                raise ExperimentError(f"{source}: " + unknown_key_message(str(key), list(used), "optimizer")
                                      + f" ({conf['args']['algorithm']} uses no other solver)")
    for key, s in spec.items():
        try:
            make_optimizer(s, conf["hparams"]["epoch"], 1, f"optimizer.{key}")
        except OptimizerConfigError as err:
            raise ExperimentError(f"{source}: {err}") from None
    if spec and "train" not in spec:
        raise ExperimentError(f"{source}: 'optimizer' needs a 'train' entry")


def build_optimizers(conf, loaders, n_procs, source):
    from .optim import make_optimizer
    hp = conf["hparams"]
    spec = conf["optimizer"] or {"train": {"name": "Adam", "lr": 5e-4}}
    iters = max(1, len(loaders["train"]) // (hp["batch_size_train"] // n_procs))
    out = {}
    for key, s in spec.items():
        out[key] = make_optimizer(s, int(hp["epoch"]), iters, f"optimizer.{key}")
        # what a runner needs to rebuild the schedule (e.g. one per progressive-shrinking stage)
        out[key].detofa_spec, out[key].detofa_iters_per_epoch = copy.deepcopy(s), iters
    return out


def prepare(conf, source="experiment"):
    """Every check that needs no data, in order; returns (conf with defaults, runner class)."""
    from .. import register
    register()
    conf = check_experiment(conf, source)
    args = conf["args"]
    cls = runner_class(args["algorithm"], source)
    if args["search"] is None:
        args["search"] = bool(getattr(cls, "SEARCH", True))
    if not args["output_path"]:
        args["output_path"] = os.path.join("log", args["algorithm"])
    network_settings(conf, source)
    check_network_entry(conf, source)
    check_network_files(conf, source)
    derive_shapes(conf, source)
    check_hparams(conf, cls, source)
    if hasattr(cls, "check_settings"):   # hparams against the network (e.g. search budgets vs the FLOPs range)
        _schema(source, cls.check_settings, conf["hparams"], network_settings(conf, source), _input_size(conf, source))
    check_optimizers(conf, source, cls)
    loader_module(conf, source)
    name, dl = next(iter(conf["dataloader"].items()))
    check_synthetic(dl, f"{source}: dataloader.{name}")
    check_output_folder(args["output_path"], conf, source)
    return conf, cls


def run_experiment(conf, source="experiment"):
    """Run one experiment; returns what the runner's ``run()`` returns."""
    conf, cls = prepare(conf, source)
    args = conf["args"]
    ctx, event = make_context(args["context"], args["device_id"], args["type_config"])
    comm = make_communicator(ctx)
    check_batches(conf["hparams"], comm.n_procs, source)
    use_context(comm.ctx)
    set_hydra_context(".")
    args.update({"comm": comm, "event": event})

    name, dl = next(iter(conf["dataloader"].items()))
    prepare_synthetic(dl, rank=comm.rank, where=f"{source}: dataloader.{name}")
    searching = bool(cls.needs_dval(conf["hparams"])) if hasattr(cls, "needs_dval") else bool(args["search"])
    loaders = build_dataloaders(conf, comm, searching, source)
    check_data_agrees(conf, loaders, source)
    check_images(loaders, source)
    calib = None
    if not args["search"]:
        calib = training_calibration(loaders["train"], conf["hparams"], args["output_path"])
    # initial weights (and every nnabla random draw after them) are a function of the experiment's seed,
    # whatever ran before in this process (a test session, a tool calling run_experiment twice)
    nn.seed(int(conf["hparams"].get("seed", 0)))
    model = build_network(conf, args["search"], source, bn_calibration=calib)
    optimizers = build_optimizers(conf, loaders, comm.n_procs, source)
    if comm.rank == 0:
        write_run_identity(args["output_path"], conf, source)
    t0 = time.time()
    runner = cls(model, optimizer=optimizers, regularizer={}, dataloader=loaders, hparams=conf["hparams"], args=args)
    result = runner.run()
    if comm.rank == 0:
        nn.logger.info(f"{args['algorithm']} finished in {time.time() - t0:.1f}s; outputs in "
                       f"{runner._abs_output_path}")
    return result


def training_calibration(train_loader, hparams, out_dir):
    """The run's BatchNorm calibration batches (the fixed set of ``evaluation.path_eval``), for a
    static network built from supernet weights."""
    from ..evaluation.path_eval import measurement_sets
    calib, _ = measurement_sets(train_loader, None, out_dir, hparams.get("bn_calib_images", 2000), 0,
                                hparams.get("bn_calib_batch_size") or hparams["mini_batch_valid"],
                                hparams.get("seed", 0))
    return calib.images if calib is not None else None


def check_synthetic(dl_args: dict, where: str):
    """``"synthetic"`` may only write a data set into an empty (or absent) folder, or re-use one it
    made itself (``SYNTHETIC_MARKER``): it never writes into a folder that holds anything else."""
    spec = dl_args.get("synthetic")
    if spec is None:
        return
    if not isinstance(spec, dict):
        raise ExperimentError(f"{where}.synthetic: expected an object of make-synthetic-voc options")
    root = dl_args.get("root")
    if not root or not isinstance(root, str):
        raise ExperimentError(f"{where}: 'synthetic' needs 'root' (where to write the data set)")
    try:
        check_synthetic_options(spec, f"{where}.synthetic")
    except ValueError as err:
        raise ExperimentError(str(err)) from None
    if os.path.isfile(os.path.join(root, SYNTHETIC_MARKER)):
        return
    if synthetic_state(root) not in ("absent", "empty"):
        raise ExperimentError(f"{where}.root={root!r} exists and is not a synthetic data set made by this tool; "
                              f"'synthetic' never writes into a folder that holds anything else (remove "
                              f"'synthetic' to read the data there, or point 'root' at a new folder)")


def prepare_synthetic(dl_args: dict, rank: int = 0, where: str = "dataloader"):
    """``"synthetic": {...}`` in the loader options makes the embedded demo data set on first use
    (rank 0 writes it, marker last; other ranks wait for the marker)."""
    check_synthetic(dl_args, where)
    spec = dl_args.pop("synthetic", None)
    if spec is None:
        return None
    root = dl_args["root"]
    marker = os.path.join(root, SYNTHETIC_MARKER)
    if os.path.isfile(marker):
        return root
    if rank == 0:
        from ..data.records import DataError
        from ..data.synthetic import make_synthetic_voc
        try:
            make_synthetic_voc(root, **check_synthetic_options(spec, f"{where}.synthetic"))
        except DataError as err:
            raise ExperimentError(f"{where}.synthetic: {err}") from None
    else:
        while not os.path.isfile(marker):
            time.sleep(1.0)
    return root
