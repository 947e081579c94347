"""Parameter names: this project's backbone, and where each tensor is in once-for-all's and NNablaNAS's supernets.

All three networks are the same OFA-ResNet50 (ResNet50-D stem with an elastic residual unit,
18 bottleneck slots 4/4/6/4, avg-pool + 1x1 shortcut in the first unit of a stage), built at the
maximum width of every layer:

=========================  ========================================  ==========================================
this project               once-for-all ``OFAResNets``               NNablaNAS ``ofa_resnet50.SearchNet``
=========================  ========================================  ==========================================
``stem/conv1``             ``input_stem.0`` (``.conv.conv``, ``.bn.bn``)   ``input_stem/0`` (``/conv/conv``, ``/bn/bn``)
``stem/res``               ``input_stem.1.conv``                     ``input_stem/1/conv``
``stem/conv3``             ``input_stem.2``                          ``input_stem/2``
``stages/S/P/convK``       ``blocks.I.convK`` (I = slot of S, P)     ``blocks/I/convK``
``stages/S/0/shortcut``    ``blocks.I.downsample``                   ``blocks/I/downsample``
(dropped)                  ``classifier.linear.linear``              ``classifier/0/linear/linear``
=========================  ========================================  ==========================================

A conv weight is (out, in, kh, kw) in all three; a BatchNorm is ``gamma/beta/mean/var`` of shape
(1, C, 1, 1) here and in NNablaNAS (``_gamma/_beta/_mean/_var``), ``weight/bias/running_mean/
running_var`` of shape (C,) in torch (plus ``num_batches_tracked``, which nothing here uses).
Imports nothing heavier than numpy.
"""
from collections import OrderedDict

from ..space import SupernetConfig
from ..space.arch import N_STAGES, STAGE_FIRST_SLOT, STAGE_SLOTS

BN_FIELDS = ("beta", "gamma", "mean", "var")
TORCH_BN = {"weight": "gamma", "bias": "beta", "running_mean": "mean", "running_var": "var"}
NNABLA_NAS_BN = {"_gamma": "gamma", "_beta": "beta", "_mean": "mean", "_var": "var"}


def _conv_bn(shapes, name, cout, cin, k):
    shapes[f"{name}/conv/W"] = (cout, cin, k, k)
    for f in BN_FIELDS:
        shapes[f"{name}/bn/{f}"] = (1, cout, 1, 1)


def backbone_shapes(cfg: SupernetConfig) -> "OrderedDict[str, tuple]":
    """{parameter name: shape} of the supernet's backbone (stem and the 18 bottleneck slots, at
    their maximum widths), in the network's order; the input normalisation, neck and heads are
    not part of it. The same names and shapes as ``DetOFASupernet(**cfg).get_parameters()``."""
    shapes = OrderedDict()
    mid, out = max(cfg.stem_mid_list()), max(cfg.stem_out_list())
    _conv_bn(shapes, "stem/conv1", mid, 3, 3)
    _conv_bn(shapes, "stem/res", mid, mid, 3)
    _conv_bn(shapes, "stem/conv3", out, mid, 3)
    cin = out
    for s in range(N_STAGES):
        cout, m = max(cfg.stage_out_list(s)), cfg.max_mid(s)
        for p in range(STAGE_SLOTS[s]):
            unit = f"stages/{s}/{p}"
            _conv_bn(shapes, f"{unit}/conv1", m, cin if p == 0 else cout, 1)
            _conv_bn(shapes, f"{unit}/conv2", m, m, 3)
            _conv_bn(shapes, f"{unit}/conv3", cout, m, 1)
            if p == 0:
                _conv_bn(shapes, f"{unit}/shortcut", cout, cin, 1)
        cin = cout
    return shapes


def _layers():
    """(our layer name, once-for-all module name, NNablaNAS module name) of every conv+BN layer."""
    out = [("stem/conv1", "input_stem.0", "input_stem/0"), ("stem/res", "input_stem.1.conv", "input_stem/1/conv"),
           ("stem/conv3", "input_stem.2", "input_stem/2")]
    for s in range(N_STAGES):
        for p in range(STAGE_SLOTS[s]):
            i = STAGE_FIRST_SLOT[s] + p
            for k in ("conv1", "conv2", "conv3"):
                out.append((f"stages/{s}/{p}/{k}", f"blocks.{i}.{k}", f"blocks/{i}/{k}"))
            if p == 0:
                out.append((f"stages/{s}/{p}/shortcut", f"blocks.{i}.downsample", f"blocks/{i}/downsample"))
    return out


def ofa_name_map() -> "OrderedDict[str, str]":
    """{once-for-all state_dict key (its module names): our parameter name} of every backbone tensor."""
    m = OrderedDict()
    for ours, ofa, _ in _layers():
        m[f"{ofa}.conv.conv.weight"] = f"{ours}/conv/W"
        for t, f in TORCH_BN.items():
            m[f"{ofa}.bn.bn.{t}"] = f"{ours}/bn/{f}"
    return m


def ofa_unused(key: str) -> bool:
    """once-for-all tensors this project has no use for: the classifier and BN batch counters."""
    return key.startswith("classifier.") or key.endswith(".num_batches_tracked")


def ofa_canonical_key(key: str, known) -> str:
    """The module-name key of a once-for-all state_dict key in either layout it accepts: its own
    module names, or the flat names (``.conv.weight``, ``.bn.``, ``.linear.``) that
    ``OFAResNets.load_state_dict`` renames the same way."""
    if key in known:
        return key
    if ".linear." in key:
        return key.replace(".linear.", ".linear.linear.")
    if "bn." in key:
        return key.replace("bn.", "bn.bn.")
    if "conv.weight" in key:
        return key.replace("conv.weight", "conv.conv.weight")
    return key


def nnabla_nas_name_map() -> "OrderedDict[str, str]":
    """{NNablaNAS ``ofa_resnet50.SearchNet`` parameter name: our parameter name} of every backbone tensor."""
    m = OrderedDict()
    for ours, _, nas in _layers():
        m[f"{nas}/conv/conv/_W"] = f"{ours}/conv/W"
        for t, f in NNABLA_NAS_BN.items():
            m[f"{nas}/bn/bn/{t}"] = f"{ours}/bn/{f}"
    return m


def nnabla_nas_unused(key: str) -> bool:
    """NNablaNAS tensors this project has no use for: the classifier."""
    return key.startswith("classifier/")
