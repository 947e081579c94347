"""The OFA-ResNet50 + CenterNet detector body, shared by the supernet and extracted static paths.

A :class:`DetectorNet` is built from per-layer maximum widths and runs one arch: the supernet is
built at the space's maximum widths with all 18 unit slots and runs whatever arch is set; a
static path is built at exactly its arch's widths, with only its units, and runs that arch
(every layer then at full width, so its graph has no slicing).

Input: float32 (N, 3, H, W), RGB, values 0..255 (raw images), H and W multiples of 32. The network
normalises with the ImageNet mean/std itself (``input_mean``/``input_std``, parameters without
gradient that travel with the weights), so an exported network takes raw images.
Outputs: (heatmap logits (N, C, H/4, W/4), wh (N, 2, H/4, W/4), reg (N, 2, H/4, W/4)).
"""
from collections import OrderedDict

import nnabla as nn
import nnabla.functions as F
import numpy as np

from ..compat import ensure_host

ensure_host()  # nnabla_nas.contrib cannot be imported from the 0.15.0 wheel alone

from nnabla_nas.contrib.model import Model  # noqa: E402
import nnabla_nas.module as Mo  # noqa: E402

from ..detection.loss import centernet_losses
from ..space import Arch, ConfigError, SupernetConfig, mflops
from ..space.arch import N_STAGES, STAGE_FIRST_SLOT, STAGE_SLOTS, STAGE_STRIDES
from .blocks import Bottleneck, DeconvBN, Head, Stem
from .bn_calibration import recalibrate_bn
from .elastic import ElasticBN, Param, host_view

IMAGE_MEAN = (123.675, 116.28, 103.53)   # ImageNet RGB mean x 255
IMAGE_STD = (58.395, 57.12, 57.375)      # ImageNet RGB std x 255
HEATMAP_BIAS = -2.19                     # CenterNet: sigmoid(-2.19) ~ 0.1 at start
OUTPUT_STRIDE = 4


class DetectorNet(Model):
    """Common structure and NNablaNAS ``Model`` interface; subclasses decide widths and arch.

    ``widths``: ``stem_mid``, ``stem_out`` (ints), ``stem_residual`` (bool: build the stem's
    residual unit), ``stage_out`` (4 ints), ``mid`` (18 ints, ``None`` for a unit not built).
    """

    def __init__(self, config: SupernetConfig, widths: dict):
        Mo.Module.__init__(self)
        self.config = config
        bn = dict(bn_decay=config.bn_decay, bn_eps=config.bn_eps)
        self.input_mean = Param((1, 3, 1, 1), need_grad=False,
                                initializer=np.array(IMAGE_MEAN, np.float32).reshape(1, 3, 1, 1))
        self.input_std = Param((1, 3, 1, 1), need_grad=False,
                               initializer=np.array(IMAGE_STD, np.float32).reshape(1, 3, 1, 1))
        self.stem = Stem(widths["stem_mid"], widths["stem_out"], widths["stem_residual"],
                         activation=config.stem_activation, **bn)
        stages = []
        cin = widths["stem_out"]
        for s in range(N_STAGES):
            cout = widths["stage_out"][s]
            units = []
            for pos in range(STAGE_SLOTS[s]):
                mid = widths["mid"][STAGE_FIRST_SLOT[s] + pos]
                if mid is None:
                    break  # units drop from the end of a stage
                first = pos == 0
                units.append(Bottleneck(cin if first else cout, mid, cout, STAGE_STRIDES[s] if first else 1,
                                        downsample=first, **bn))
            stages.append(Mo.ModuleList(units))
            cin = cout
        self.stages = Mo.ModuleList(stages)
        neck = []
        for c in config.neck():
            neck.append(DeconvBN(cin, c, **bn))
            cin = c
        self.neck = Mo.ModuleList(neck)
        hc = config.head()
        self.hm = Head(cin, hc, config.num_classes, bias_init=HEATMAP_BIAS, small_init=False)
        self.wh = Head(cin, hc, 2)
        self.reg = Head(cin, hc, 2)

    # --- the path ----------------------------------------------------------------------------
    @property
    def arch(self) -> Arch:
        return self._arch

    def _all_modules(self) -> list:
        """Every module of the network, this one included (the structure is fixed once built)."""
        mods = self.__dict__.get("_module_list")
        if mods is None:
            mods = [m for _, m in Mo.Module.get_modules(self)]
            self.__dict__["_module_list"] = mods
        return mods

    def elastic_bns(self) -> list:
        """Every ElasticBN of the network."""
        bns = self.__dict__.get("_elastic_bns")
        if bns is None:
            bns = [m for m in self._all_modules() if isinstance(m, ElasticBN)]
            self.__dict__["_elastic_bns"] = bns
        return bns

    def commit_bn_statistics(self) -> int:
        """Write the pending running-statistic updates of sliced training graphs into the
        BatchNorms' statistics (see ``ElasticBN``); returns how many BatchNorms were written.
        Done automatically when a BatchNorm builds its next graph (``recalibrate_bn`` included)
        and in ``get_parameters``; the trainer calls it after every training forward/backward."""
        return sum(bn.commit_statistics() for bn in self.elastic_bns())

    def snapshot(self) -> dict:
        """What a measurement may change: the arch, every BatchNorm's running statistics (pending
        updates committed first) and every module's training flag (see ``restore``)."""
        self.commit_bn_statistics()
        return {"arch": self._arch,
                "bn": [(host_view(bn.mean.data).copy(), host_view(bn.var.data).copy()) for bn in self.elastic_bns()],
                "training": [m.__dict__.get("_training", True) for m in self._all_modules()]}

    def restore(self, snap: dict) -> None:
        """Put the network back into the state of ``snapshot()``."""
        self._arch = snap["arch"]
        for bn, (mean, var) in zip(self.elastic_bns(), snap["bn"]):
            bn.forget_tracked()
            host_view(bn.mean.data)[...] = mean
            host_view(bn.var.data)[...] = var
        for m, t in zip(self._all_modules(), snap["training"]):
            m.__dict__["_training"] = t

    def apply(self, memo=None, **kargs):
        """``Module.apply``. ``apply(training=mode)`` alone (NNablaNAS's runner, before every graph
        build) sets the flag of every module directly: the same result, but ``Module.apply`` calls
        the recursive ``training`` setter on every module, which sets each module once per
        ancestor (2.7 ms of CPU per build of the width-0.25 supernet, 0.06 ms here)."""
        if memo is None and len(kargs) == 1 and "training" in kargs:
            mods = self._all_modules()
            if all(type(m).training is Mo.Module.training for m in mods):
                for m in mods:
                    m.__dict__["_training"] = kargs["training"]
                return self
        return Mo.Module.apply(self, memo, **kargs)

    def call_backbone(self, x, return_stages=False):
        """Stride-32 features of the current arch for raw images ``x`` (any H, W); with
        ``return_stages`` the outputs of the four stages (strides 4, 8, 16, 32: after the last
        active unit of each stage) as a list, the last of which is the stride-32 features."""
        if len(x.shape) != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images (N, 3, H, W), got shape {tuple(x.shape)}")
        arch = self.arch
        ch = self.config.arch_channels(arch)
        x = (x - self.input_mean) / self.input_std
        x = self.stem(x, mid=ch["stem_mid"], out=ch["stem_out"], residual=arch.stem_residual)
        x = F.max_pooling(x, (3, 3), (2, 2), pad=(1, 1))
        stages = []
        for s in range(N_STAGES):
            for pos in range(arch.stage_depth(s)):
                x = self.stages[s][pos](x, mid=ch["mid"][STAGE_FIRST_SLOT[s] + pos], out=ch["stage_out"][s])
            stages.append(x)
        return stages if return_stages else x

    def call(self, x):
        """(heatmap logits, wh, reg), each at 1/4 of the input size."""
        if len(x.shape) == 4 and (x.shape[2] % 32 or x.shape[3] % 32):
            raise ValueError(f"input height and width must be multiples of 32, got {tuple(x.shape[2:])}")
        f = self.call_backbone(x)
        for layer in self.neck:
            f = layer(f)
        return self.hm(f), self.wh(f), self.reg(f)

    # --- NNablaNAS Model interface -----------------------------------------------------------
    def loss(self, outputs, targets, loss_weights=None, *args):
        """Weighted CenterNet loss (see ``detection.loss``); ``loss_weights`` = (heatmap, size, offset)."""
        return centernet_losses(outputs, targets, loss_weights)["loss"]

    def metrics(self, outputs, targets):
        """{'loss', 'hm_loss', 'wh_loss', 'off_loss'} with the default weights (1, 0.1, 1)."""
        return dict(centernet_losses(outputs, targets))

    def get_net_parameters(self, grad_only=False):
        return self.get_parameters(grad_only=grad_only)

    def get_arch_parameters(self, grad_only=False):
        return OrderedDict()

    def flops(self, input_size: int, part: str = "detector") -> float:
        """Analytic MFLOPs (multiply-accumulates / 1e6) of the current arch, one image of input_size^2."""
        return mflops(self.arch, self.config, input_size, part)

    def recalibrate_bn(self, batches) -> int:
        """Reset the running statistics of the current arch's BatchNorms to the exact mean and
        (biased) variance over all images of ``batches`` (iterable of (N, 3, H, W) raw images),
        computed while every BatchNorm normalises with its batch statistics (as once-for-all's
        ``set_running_statistics``). Returns the number of images used."""
        return recalibrate_bn(self, batches)

    # --- weights -----------------------------------------------------------------------------
    def get_parameters(self, grad_only=False):
        """``Module.get_parameters``, pending BatchNorm statistics committed first (so saving,
        extraction and loading over the returned parameters see and keep committed values)."""
        self.commit_bn_statistics()
        return Mo.Module.get_parameters(self, grad_only=grad_only)

    def set_parameter_arrays(self, arrays, where="parameters"):
        """Copy ``{name: array}`` into this network; every parameter must be present, same shape."""
        refuse_backbone_file(arrays, where)
        for key, p in self.get_parameters().items():
            if key not in arrays:
                raise KeyError(f"{where}: missing parameter '{key}'")
            a = np.asarray(arrays[key])
            if a.shape != tuple(p.shape):
                raise ValueError(f"{where}: parameter '{key}' has shape {a.shape}, expected {tuple(p.shape)} "
                                 f"(weights of a network with other settings?)")
            p.d = a

    def load_parameters(self, path, raise_if_missing=True):
        """Load weights saved by ``save_weights`` (.h5); strict: every parameter, same shapes."""
        self.set_parameter_arrays(read_parameters(path), where=str(path))

    #: a supernet's weight file carries this entry: a static network built from it must re-calibrate
    #: its BatchNorm statistics (they are those of every path trained, not of its own)
    SUPERNET_MARKER = "detofa_supernet_weights"

    def save_weights(self, path) -> None:
        """Every parameter (``nn.save_parameters``); a supernet's file also holds ``SUPERNET_MARKER``."""
        params = OrderedDict(self.get_parameters())
        if self.is_supernet:
            params[self.SUPERNET_MARKER] = nn.Variable.from_numpy_array(np.ones(1, np.float32))
        nn.save_parameters(path, params)

    is_supernet = False

    def summary(self):
        n = sum(int(np.prod(p.shape)) for p in self.get_parameters(grad_only=True).values())
        return f"{type(self).__name__}: arch {self.arch.to_json()}, {n / 1e6:.3f} M trainable parameters"


def refuse_backbone_file(arrays, where) -> None:
    """A backbone file of ``import-weights`` is no network's weight file: say where it goes."""
    from ..transfer.importer import BACKBONE_MARKER
    if BACKBONE_MARKER in arrays:
        raise ConfigError(f"{where}: a pretrained backbone written by import-weights (backbone only, no neck or "
                          f"heads): give it as 'pretrained', not as 'weights'")


def read_parameters(path) -> "OrderedDict":
    """{name: numpy array} of a parameter file, read without touching nnabla's global scope."""
    from hydra import utils as hydra_utils  # NNablaNAS runs under hydra, which changes the cwd
    with nn.parameter_scope("", OrderedDict()):
        nn.load_parameters(hydra_utils.to_absolute_path(str(path)))
        return OrderedDict((k, v.d.copy()) for k, v in nn.get_parameters(grad_only=False).items())
