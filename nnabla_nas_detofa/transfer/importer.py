"""Import an ImageNet OFA-ResNet50 supernet as the backbone of the DetOFA supernet (the paper's transfer, §4.1).

Sources, told apart by their content (not their file name; once-for-all's download has no extension):

* once-for-all's released ``ofa_supernet_resnet50`` or any checkpoint of its ``OFAResNets`` in the
  paper's space: a torch file (zip or legacy format) holding ``{"state_dict": ...}`` or the state
  dict itself, under once-for-all's module names or the flat names its ``load_state_dict`` accepts;
* an ``.h5`` of NNablaNAS's ``ofa_resnet50.SearchNet`` parameters (``Module.save_parameters``), taken
  as saved (NNablaNAS re-sorts bottleneck channels when its SearchNet loads weights; we do not, so
  every path computes what it computed in the network that saved the file);
* an ``.h5`` written by :func:`save_backbone` (``python -m nnabla_nas_detofa import-weights``).

Every backbone tensor is mapped (stem convs and the stem's residual unit, every bottleneck's
conv1-3, the avg-pool + 1x1 shortcuts, BatchNorm affine parameters and running statistics); the
classifier and BatchNorm batch counters are dropped. A tensor that is missing, left over, or of
another shape than the configured supernet's stops the import with one line naming it.
Both sources are importance-sorted supernets whose paths use leading weight slices, as ours do,
so tensors are copied as they are.
"""
import os
from collections import OrderedDict

import numpy as np

from ..space import ConfigError, SupernetConfig
from .names import (backbone_shapes, nnabla_nas_name_map, nnabla_nas_unused, ofa_canonical_key, ofa_name_map,
                    ofa_unused)
from .torch_reader import CheckpointError, load_torch_checkpoint


class TransferError(ConfigError):
    """A pretrained supernet that cannot be imported; one line naming the file and the tensor."""


#: parameter an ``import-weights`` file carries: [format version, width_mult, divisor, source stem is ReLU6]
BACKBONE_MARKER = "detofa_pretrained_backbone"
BACKBONE_FORMAT = 1
#: the entry a full DetOFA supernet weight file carries (``DetectorNet.SUPERNET_MARKER``)
SUPERNET_MARKER = "detofa_supernet_weights"

OFA_DOWNLOAD = "https://huggingface.co/han-cai/ofa/resolve/main/ofa_supernet_resnet50"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

NOT_IMPORTED = ("the input normalisation is fixed (ImageNet mean/std of RGB 0..255 images); the neck (3 "
                "up-convolutions) and the heatmap / size / offset heads start from their initialisation "
                "(deconvolutions N(0, 0.001^2) with BN gamma 1, beta 0; head 3x3 convs He-normal; heatmap output "
                "U(+-1/sqrt(fan_in)) with bias -2.19; size and offset outputs N(0, 0.001^2))")
WIDEST_STAGE = "stages/3/0/conv3/conv/W"   # its output channels tell the width a file was made for


def _width_hint(cfg: SupernetConfig, found_width=None) -> str:
    guess = ""
    if found_width:
        guess = f"; its widest stage-4 width {found_width} suggests width_mult {found_width / 2048:g}"
    return (f"the file was made for another width multiplier or channel divisor than this supernet's "
            f"(width_mult={cfg.width_mult:g}, divisor={cfg.divisor}{guess}; once-for-all's ofa_supernet_resnet50 "
            f"is width_mult 1.0, divisor 8)")


def sniff(path) -> str:
    """'torch-zip', 'torch-legacy' or 'h5' by the file's first bytes; TransferError otherwise."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as err:
        raise TransferError(f"{path}: cannot read the pretrained supernet ({err.strerror or err})") from None
    if head.startswith(b"PK\x03\x04"):
        return "torch-zip"
    if head == HDF5_MAGIC:
        return "h5"
    if head[:1] == b"\x80":  # a pickle stream (protocol >= 2): torch's legacy format
        return "torch-legacy"
    raise TransferError(f"{path}: not a pretrained supernet (neither a torch checkpoint of once-for-all's OFAResNets "
                        f"nor an .h5 of NNablaNAS or import-weights)")


def _report(source, fmt, cfg, arrays, dropped, counters, stem_activation):
    note = None
    if stem_activation != cfg.stem_activation:
        note = (f"the source's stem computes {stem_activation.upper()} but this supernet's stem uses "
                f"{cfg.stem_activation.upper()} (stem_activation={cfg.stem_activation!r}): the imported network "
                f"differs wherever a stem activation exceeds 6; set \"stem_activation\": \"{stem_activation}\" "
                f"to compute exactly what the source computed")
    return {"source": os.fspath(source), "format": fmt,
            "config": {"width_mult": cfg.width_mult, "divisor": cfg.divisor, "stem_activation": cfg.stem_activation},
            "loaded": len(arrays), "values": int(sum(a.size for a in arrays.values())),
            "dropped": dropped, "unused_counters": counters, "source_stem_activation": stem_activation,
            "note": note, "not_imported": NOT_IMPORTED}


def format_report(report: dict) -> str:
    """The report of :func:`import_supernet` as a few lines of text."""
    lines = [f"pretrained backbone: {report['source']} ({report['format']})",
             f"  loaded {report['loaded']} tensors ({report['values'] / 1e6:.3f} M values) into the supernet "
             f"backbone (width_mult={report['config']['width_mult']:g}, divisor={report['config']['divisor']}): "
             f"stem, stem residual unit, 18 bottleneck slots with their shortcuts, BN running statistics included"]
    if report["dropped"]:
        lines.append(f"  dropped: {', '.join(report['dropped'])}")
    if report["unused_counters"]:
        lines.append(f"  unused: {report['unused_counters']} BatchNorm batch counters (num_batches_tracked)")
    if report.get("note"):
        lines.append(f"  note: {report['note']}")
    lines.append(f"  not imported: {report['not_imported']}")
    return "\n".join(lines)


def _map_tensors(tensors, name_map, unused, canonical, to_ours, source_shape, source, what, cfg):
    """{our name: float32 array} of ``tensors`` ({source key: array}) through ``name_map``; the
    classifier etc. (``unused``) dropped; one TransferError naming the first problem."""
    shapes = backbone_shapes(cfg)
    assert set(name_map.values()) == set(shapes)
    arrays, seen, dropped, counters, problems = OrderedDict(), set(), [], 0, []
    found_width = None
    for key, value in tensors.items():
        if name_map.get(canonical(key, name_map)) == WIDEST_STAGE and np.ndim(value) == 4:
            found_width = int(np.shape(value)[0])
    for key, value in tensors.items():
        ckey = canonical(key, name_map)
        if ckey in name_map:
            if ckey in seen:
                problems.append(f"tensor '{key}' appears twice")
                continue
            seen.add(ckey)
            ours = name_map[ckey]
            value = np.asarray(value)
            expected = source_shape(ours, shapes[ours])
            if tuple(value.shape) != tuple(expected):
                problems.append(f"tensor '{key}' has shape {tuple(value.shape)}, the supernet expects {tuple(expected)} "
                                f"for '{ours}': {_width_hint(cfg, found_width)}")
                continue
            if value.dtype.kind != "f":
                problems.append(f"tensor '{key}' is {value.dtype}, expected floating point values")
                continue
            arrays[ours] = to_ours(value, shapes[ours])
        elif unused(key):
            if key.endswith("num_batches_tracked"):
                counters += 1
            else:
                dropped.append(f"{key} {tuple(np.shape(value))}")
        else:
            problems.append(f"left-over tensor '{key}' {tuple(np.shape(value))}: the supernet has no place for it "
                            f"(not a {what} of the paper's OFA-ResNet50 space?)")
    for key, ours in name_map.items():
        if key not in seen and not any(p.startswith(f"tensor '{key}' ") for p in problems):
            problems.append(f"tensor '{key}' (for '{ours}', shape {tuple(source_shape(ours, shapes[ours]))}) is missing "
                            f"(not a {what} of the paper's OFA-ResNet50 space: depth choices 0-2, 18 bottlenecks?)")
    if problems:
        more = f" ({len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise TransferError(f"{os.fspath(source)}: {problems[0]}{more}")
    return OrderedDict((k, arrays[k]) for k in shapes), dropped, counters


def _state_dict(obj, source):
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        return obj["state_dict"], "{'state_dict': ...}"
    if isinstance(obj, dict) and obj and all(isinstance(v, np.ndarray) for v in obj.values()):
        return obj, "a bare state dict"
    keys = sorted(map(str, obj))[:5] if isinstance(obj, dict) else type(obj).__name__
    raise TransferError(f"{os.fspath(source)}: a torch checkpoint without a 'state_dict' of tensors (found {keys})")


def _from_once_for_all(source, kind, cfg):
    try:
        obj = load_torch_checkpoint(source)
    except CheckpointError as err:
        raise TransferError(str(err)) from None
    sd, holder = _state_dict(obj, source)
    name_map = ofa_name_map()
    flat = not any(k in name_map for k in sd)
    arrays, dropped, counters = _map_tensors(
        sd, name_map, ofa_unused, ofa_canonical_key,
        to_ours=lambda v, shape: np.ascontiguousarray(v, dtype=np.float32).reshape(shape),
        source_shape=lambda ours, shape: (shape[1],) if "/bn/" in ours else shape,
        source=source, what="once-for-all OFAResNets checkpoint", cfg=cfg)
    fmt = (f"once-for-all OFAResNets torch checkpoint, {'zip' if kind == 'torch-zip' else 'legacy'} format, "
           f"{holder}, {'flat' if flat else 'module'} names")
    return arrays, _report(source, fmt, cfg, arrays, dropped, counters, "relu")


def read_h5_parameters(source) -> "OrderedDict[str, np.ndarray]":
    """{name: array} of an nnabla parameter ``.h5`` (``nn.save_parameters``: one dataset per
    parameter, path = name, attribute ``index`` = order), read with h5py (nnabla's own loader takes
    ~3x longer and goes through its global parameter scope)."""
    import h5py  # a dependency of nnabla; only needed for .h5 sources
    items = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            index = obj.attrs.get("index", None)
            items.append((int(index) if index is not None else len(items), name, obj[...]))

    try:
        with h5py.File(os.fspath(source), "r") as f:
            f.visititems(visit)
    except Exception as err:  # h5py raises several types for a damaged file
        raise TransferError(f"{os.fspath(source)}: cannot read the .h5 parameter file ({type(err).__name__}: "
                            f"{err})") from None
    return OrderedDict((name, np.asarray(a)) for _, name, a in sorted(items, key=lambda t: t[0]))


def _from_nnabla_nas(source, params, cfg):
    arrays, dropped, counters = _map_tensors(
        params, nnabla_nas_name_map(), nnabla_nas_unused, lambda k, known: k,
        to_ours=lambda v, shape: np.ascontiguousarray(v, dtype=np.float32),
        source_shape=lambda ours, shape: shape, source=source, what="NNablaNAS ofa_resnet50 SearchNet .h5", cfg=cfg)
    # NNablaNAS's ofa_resnet50 builds its stem DynamicConvLayers without act_func: its default ReLU6
    return arrays, _report(source, "NNablaNAS ofa_resnet50 SearchNet parameters (.h5)", cfg, arrays, dropped, counters,
                           "relu6")


def _from_backbone_file(source, params, cfg):
    marker = np.asarray(params[BACKBONE_MARKER], dtype=np.float64).reshape(-1)
    if marker.size != 4 or int(marker[0]) != BACKBONE_FORMAT:
        raise TransferError(f"{os.fspath(source)}: unknown import-weights file version {marker.tolist()}")
    wm, div = float(marker[1]), int(marker[2])
    if abs(wm - cfg.width_mult) > 1e-6 or div != cfg.divisor:
        raise TransferError(f"{os.fspath(source)}: imported for width_mult={wm:g}, divisor={div}; this supernet has "
                            f"width_mult={cfg.width_mult:g}, divisor={cfg.divisor} (run import-weights again with "
                            f"--width-mult {cfg.width_mult:g} --divisor {cfg.divisor})")
    shapes = backbone_shapes(cfg)
    rest = {k: v for k, v in params.items() if k != BACKBONE_MARKER}
    arrays, dropped, counters = _map_tensors(
        rest, OrderedDict((k, k) for k in shapes), lambda k: False, lambda k, known: k,
        to_ours=lambda v, shape: np.ascontiguousarray(v, dtype=np.float32),
        source_shape=lambda ours, shape: shape, source=source, what="import-weights file", cfg=cfg)
    return arrays, _report(source, "backbone .h5 written by import-weights", cfg, arrays, dropped, counters,
                           "relu6" if marker[3] else "relu")


def import_supernet(source, config: SupernetConfig):
    """(arrays, report): the backbone parameters of the supernet of ``config`` ({our parameter name:
    float32 array at the supernet's maximum widths}, exactly the names of
    :func:`~nnabla_nas_detofa.transfer.names.backbone_shapes`) taken from ``source``, and a report
    (dict: source, format, config, loaded tensors and values, dropped tensors, what was not
    imported; :func:`format_report` prints it). Raises :class:`TransferError` with one line."""
    if not isinstance(config, SupernetConfig):
        raise TypeError("import_supernet: config must be a SupernetConfig")
    kind = sniff(source)
    if kind != "h5":
        return _from_once_for_all(source, kind, config)
    params = read_h5_parameters(source)
    if BACKBONE_MARKER in params:
        return _from_backbone_file(source, params, config)
    if SUPERNET_MARKER in params or any(k.startswith(("neck/", "hm/")) for k in params):
        raise TransferError(f"{os.fspath(source)}: a DetOFA detection network's weight file, not an ImageNet "
                            f"supernet: give it as 'weights' (resume or extract), not as 'pretrained'")
    if any(k.startswith("input_stem/") for k in params):
        return _from_nnabla_nas(source, params, config)
    raise TransferError(f"{os.fspath(source)}: an .h5 without NNablaNAS ofa_resnet50 parameters "
                        f"('input_stem/0/conv/conv/_W', ...) or an import-weights backbone: not a supernet "
                        f"this project can import")


def save_backbone(path, arrays, report) -> None:
    """Write backbone ``arrays`` imported with ``report`` (:func:`import_supernet`) as an ``.h5`` that
    ``pretrained`` reads back; atomically.

    The file holds only backbone parameters and :data:`BACKBONE_MARKER` (format, width_mult,
    divisor, the source's stem activation): a full-network loader refuses it
    (``DetectorNet.load_parameters``) instead of taking it for a DetOFA supernet."""
    import nnabla as nn
    from ..atomic import atomic_path
    config = SupernetConfig(width_mult=report["config"]["width_mult"], divisor=report["config"]["divisor"])
    shapes = backbone_shapes(config)
    if list(arrays) != list(shapes) or any(tuple(a.shape) != shapes[k] for k, a in arrays.items()):
        raise ValueError("save_backbone: arrays are not the supernet backbone's parameters")
    with nn.parameter_scope("", OrderedDict()):
        params = OrderedDict()
        for k, a in arrays.items():
            params[k] = nn.Variable.from_numpy_array(np.ascontiguousarray(a, np.float32))
        params[BACKBONE_MARKER] = nn.Variable.from_numpy_array(
            np.array([BACKBONE_FORMAT, config.width_mult, config.divisor,
                      report["source_stem_activation"] == "relu6"], np.float32))
        with atomic_path(path, suffix=".h5") as tmp:
            nn.save_parameters(tmp, params)
