"""The NNablaNAS data loader: ``"dataloader": {"detofa_voc": {...}}`` in an experiment file.

NNablaNAS's ``Configuration.get_dataloader`` builds three loaders from the same options:
``train`` (``training=True``), ``valid`` (``training=False``) and ``test`` (``searching=False,
training=False``), with ``searching`` = the run is a search. Which images each one reads:

==================  ===========================  ============================================
searching           training=True                training=False
==================  ===========================  ============================================
True                ``train_split``, search part  ``train_split``, held-out part (D_val, the
                    (1 - ``search_valid_         images path validation losses are measured
                    fraction``, default 80 %)     on; default 20 %)
False               ``train_split``               ``valid_split`` (default: ``test_split``)
==================  ===========================  ============================================

(``valid`` and ``test`` of a non-search run get identical arguments, so both read ``valid_split``;
``test_split`` is its default and what ``iterate_eval("test")`` reads.) The search split is a
fixed function of ``seed`` (``pipeline.search_split``), identical on every rank.

Options (JSON keys; unknown keys are an error):

* ``root`` (required), ``format`` (``"voc"`` | ``"coco"``; ``detofa_voc`` defaults to voc,
  ``detofa_coco`` to coco)
* ``train_split`` / ``valid_split`` / ``test_split``: VOC ``"2007_trainval+2012_trainval"`` /
  ``null`` / ``"2007_test"``; COCO ``"train2017"`` / ``null`` / ``"val2017"``
* ``classes``: VOC class list or the path of a class file (default ``ROOT/classes.txt``, else the
  20 VOC classes); ``num_classes``: optional check against the class list
* ``input_size`` (384), ``output_stride`` (4), ``max_objs`` (128), ``radius_mode``
  (``"centernet"`` | ``"exact"``)
* ``augment``: ``true`` (default) / ``false`` / ``{"scale_range": [0.6, 1.4], "shift": 0.25,
  "flip": 0.5, "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "lighting": 0.1,
  "min_box_size": 1.0}`` (applied to training loaders only)
* ``shuffle`` (default: ``training``), ``seed`` (0), ``search_valid_fraction`` (0.2)
* ``num_workers`` (default ``min(4, cpus)``; 0 = synchronous), ``prefetch`` (2 batches)

Multi-process: rank ``r`` of ``n`` reads images ``r, r + n, ...`` of its part, truncated to
``len // n`` so that every rank runs the same number of steps; ``len(loader)`` is this rank's
count. ``iterate_eval`` shards without truncation, so every image is evaluated exactly once.
"""
import os
import types
from typing import Optional

from nnabla_nas.dataset.dataloader import BaseDataLoader

from ..schema import MAX_SEED, finite_number, show_value
from .dataset import DEFAULT_SPLITS, FORMATS, check_split, load_dataset
from .pipeline import DetectionLoader, default_workers, search_split, shard
from .records import DataError, DetectionDataset
from .transforms import AugmentConfig

DEFAULTS = {
    "root": None, "format": "voc", "train_split": None, "valid_split": None, "test_split": None,
    "classes": None, "num_classes": None, "input_size": 384, "output_stride": 4, "max_objs": 128,
    "radius_mode": "centernet", "augment": True, "shuffle": None, "seed": 0, "search_valid_fraction": 0.2,
    "num_workers": None, "prefetch": 2,
}


def _int(opts, key, low, where, high=None):
    v = opts[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < low or (high is not None and v > high):
        raise DataError(f"{where}.{key}: expected an integer " + (f">= {low}" if high is None else f"in {low}..{high}")
                        + f", got {show_value(v)}")


def loader_options(args: dict, fmt_default: str = "voc", where: str = "dataloader") -> dict:
    """Validated options with defaults filled in (see module doc)."""
    unknown = sorted(set(args) - set(DEFAULTS))
    if unknown:
        raise DataError(f"{where}: unknown option(s) {unknown}; known: {sorted(DEFAULTS)}")
    opts = dict(DEFAULTS, format=fmt_default)
    opts.update(args)
    if not isinstance(opts["root"], str) or not opts["root"]:
        raise DataError(f"{where}.root: the data set folder is required")
    if opts["format"] not in FORMATS:
        raise DataError(f"{where}.format: expected one of {FORMATS}, got {opts['format']!r}")
    fmt = opts["format"]
    for k in ("train_split", "valid_split", "test_split"):     # as given, before defaults derive from them
        if opts[k] is not None and (not isinstance(opts[k], str) or not opts[k]):
            raise DataError(f"{where}.{k}: expected a split name, got {show_value(opts[k])}")
    if opts["train_split"] is None:
        opts["train_split"] = DEFAULT_SPLITS["train"][fmt]
    if opts["test_split"] is None:
        opts["test_split"] = DEFAULT_SPLITS["test"][fmt]
    if opts["valid_split"] is None:
        opts["valid_split"] = opts["test_split"]
    _int(opts, "input_size", 8, where, 8192)
    _int(opts, "output_stride", 1, where, 64)
    if opts["input_size"] % opts["output_stride"]:
        raise DataError(f"{where}.input_size={opts['input_size']}: not a multiple of output_stride "
                        f"{opts['output_stride']}")
    _int(opts, "max_objs", 1, where, 100_000)
    _int(opts, "seed", 0, where, MAX_SEED)
    _int(opts, "prefetch", 1, where, 1024)
    if opts["num_workers"] is None:
        opts["num_workers"] = default_workers()
    _int(opts, "num_workers", 0, where, 256)
    if opts["num_classes"] is not None:
        _int(opts, "num_classes", 1, where)
    if opts["radius_mode"] not in ("centernet", "exact"):
        raise DataError(f"{where}.radius_mode: expected 'centernet' or 'exact', got {opts['radius_mode']!r}")
    f = opts["search_valid_fraction"]
    if not finite_number(f) or not 0 <= f < 1:
        raise DataError(f"{where}.search_valid_fraction: expected a number in [0, 1), got {show_value(f)}")
    if opts["shuffle"] is not None and not isinstance(opts["shuffle"], bool):
        raise DataError(f"{where}.shuffle: expected true, false or null, got {opts['shuffle']!r}")
    AugmentConfig.from_value(opts["augment"], f"{where}.augment")
    c = opts["classes"]
    if c is not None and not isinstance(c, str) and not (isinstance(c, (list, tuple)) and
                                                         all(isinstance(x, str) for x in c)):
        raise DataError(f"{where}.classes: expected a list of names or a class-file path, got {c!r}")
    return opts


def open_split(opts: dict, split: str, key: Optional[str] = None) -> DetectionDataset:
    """The dataset of ``split``; ``key``: the option that named it (named in the error when the
    split is not there)."""
    if key is not None:
        if not os.path.isdir(opts["root"]):
            raise DataError(f"dataloader.root={opts['root']!r}: no such directory")
        try:
            check_split(opts["format"], opts["root"], split)
        except DataError as err:
            raise DataError(f"dataloader.{key}={split!r}: {err}") from None
    ds = load_dataset(opts["format"], opts["root"], split, opts["classes"], cache=True)
    if opts["num_classes"] is not None and opts["num_classes"] != ds.num_classes:
        raise DataError(f"dataloader.num_classes={opts['num_classes']} but {opts['root']} ({split}) has "
                        f"{ds.num_classes} classes: {', '.join(ds.class_names)}")
    return ds


def select(opts: dict, searching: bool, training: bool) -> DetectionDataset:
    """The images a (searching, training) loader reads, before sharding (see module doc)."""
    if searching:
        ds = open_split(opts, opts["train_split"], "train_split")
        tr, va = search_split(len(ds), opts["search_valid_fraction"], opts["seed"])
        part = "search-train" if training else "search-valid"
        return ds.subset(tr if training else va, f"{ds.split}[{part}]")
    key = "train_split" if training else ("valid_split" if opts["valid_split"] != opts["test_split"] else "test_split")
    return open_split(opts, opts[key], key)


def make_loader(searching: bool = False, training: bool = False, batch_size: int = 1, rank: int = 0,
                n_procs: int = 1, fmt_default: str = "voc", **args) -> "DetectionLoader":
    """The loader NNablaNAS would build, without NNablaNAS (for tests and tools).

    Returns a ``pipeline.DetectionLoader`` with extra attributes ``dataset`` (the selected images of
    all ranks), ``options`` (validated), ``rank``, ``n_procs``.
    """
    opts = loader_options(args, fmt_default)
    ds = select(opts, searching, training)
    idx = shard(len(ds), rank, n_procs, equal=True)
    if len(idx) == 0:
        raise DataError(f"{ds.split}: {len(ds)} image(s) cannot feed {n_procs} processes")
    loader = DetectionLoader(
        [ds.records[i] for i in idx], ds.num_classes, batch_size, opts["input_size"], training=training,
        augment=opts["augment"], shuffle=opts["shuffle"], max_objs=opts["max_objs"],
        output_stride=opts["output_stride"], radius_mode=opts["radius_mode"], num_workers=opts["num_workers"],
        prefetch=opts["prefetch"], seed=opts["seed"], rank=rank)
    loader.dataset = ds
    loader.options = opts
    loader.n_procs = n_procs
    return loader


class DataLoader(BaseDataLoader):
    """NNablaNAS data loader for VOC-layout data (``format`` option switches to COCO); see module doc.

    ``next()`` -> ``{"inputs": [images], "targets": [heatmap, wh, reg, mask]}``;
    ``len()`` = images of this rank; ``transform = None`` (NNablaNAS then applies ``none_transform``).
    """

    FORMAT = "voc"

    def __init__(self, searching: bool = False, training: bool = False, batch_size: int = 1,
                 communicator=None, **args):
        self.transform = None
        rank = int(getattr(communicator, "rank", 0) or 0) if communicator is not None else 0
        n_procs = int(getattr(communicator, "n_procs", 1) or 1) if communicator is not None else 1
        self.searching, self.training = bool(searching), bool(training)
        self._loader = make_loader(searching, training, batch_size, rank, n_procs, self.FORMAT, **args)
        self.dataset = self._loader.dataset
        self.options = self._loader.options
        self.rank, self.n_procs = rank, n_procs
        self.batch_size = batch_size
        try:
            from nnabla.logger import logger
            logger.info(f"detofa data: {self.options['format']}:{self.options['root']} {self.dataset.split}: "
                        f"{len(self.dataset)} images, rank {rank}/{n_procs} reads {len(self)}"
                        + (f"; {len(self.dataset.problems)} box problem(s) fixed by clipping"
                           if self.dataset.problems else ""))
        except ImportError:
            pass

    @classmethod
    def check_options(cls, args: dict, where: str = "dataloader") -> dict:
        """Validate experiment-file options without reading data (raises ``DataError``)."""
        return loader_options(dict(args), cls.FORMAT, where)

    @property
    def class_names(self):
        return self.dataset.class_names

    @property
    def loader(self) -> DetectionLoader:
        return self._loader

    def __len__(self):
        return len(self._loader)

    def next(self):
        return self._loader.next()

    def shapes(self):
        return self._loader.shapes()

    def eval_dataset(self, split: Optional[str] = None) -> DetectionDataset:
        """``split=None``: the images this loader was built on (all ranks); a split name (or
        ``"train"``, ``"valid"``, ``"test"`` for the configured ones) opens that split."""
        if split is None:
            return self.dataset
        key = {"train": "train_split", "valid": "valid_split", "test": "test_split"}.get(split)
        return open_split(self.options, self.options[key] if key else split, key)

    def iterate_eval(self, split: Optional[str] = None, batch_size: Optional[int] = None, pad: bool = False,
                     all_ranks: bool = False):
        """Yield ``(images, metas)`` over a split once (letterbox, in order), this rank's shard
        unless ``all_ranks``; see ``pipeline.DetectionLoader.iterate_eval``."""
        ds = self.eval_dataset(split)
        idx = range(len(ds)) if all_ranks else shard(len(ds), self.rank, self.n_procs, equal=False)
        return self._loader.iterate_eval(batch_size, pad, records=[ds.records[i] for i in idx])

    def close(self):
        self._loader.close()


class CocoDataLoader(DataLoader):
    """``detofa_coco``: the same loader with ``format`` defaulting to COCO."""

    FORMAT = "coco"


NNABLA_NAS_DATASETS = {
    "detofa_voc": types.SimpleNamespace(DataLoader=DataLoader, __doc__=__doc__),
    "detofa_coco": types.SimpleNamespace(DataLoader=CocoDataLoader, __doc__=__doc__),
}


def register_datasets():
    """Make ``"dataloader": {"detofa_voc": ...}`` / ``{"detofa_coco": ...}`` resolvable by NNablaNAS
    (it looks loaders up as ``nnabla_nas.dataset.__dict__[name].DataLoader``)."""
    import nnabla_nas.dataset as nds
    for name, ns in NNABLA_NAS_DATASETS.items():
        setattr(nds, name, ns)
        if name not in nds.__all__:
            nds.__all__.append(name)
    return sorted(NNABLA_NAS_DATASETS)
