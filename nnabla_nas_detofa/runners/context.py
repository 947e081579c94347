"""Device context, the hydra context NNablaNAS helpers expect, and a CPU stand-in for CUDA events."""
import os

import nnabla as nn
from nnabla.ext_utils import get_extension_context

CONTEXTS = ("cpu", "cudnn", "cuda")


class ContextError(RuntimeError):
    pass


class NoEvent:
    """NNablaNAS runners synchronise CUDA streams through ``args['event']``; on CPU nothing to do."""

    def default_stream_synchronize(self):
        pass

    def add_default_stream_event(self):
        pass


def make_context(name: str = "cpu", device_id: str = "0", type_config: str = "float"):
    """Returns ``(ctx, event)``. Fails with one clear line when CUDA is asked for but unusable."""
    if name not in CONTEXTS:
        raise ContextError(f"context {name!r}: expected one of {CONTEXTS}")
    if name == "cpu":
        return get_extension_context("cpu", type_config=type_config), NoEvent()
    try:
        import nnabla_ext.cuda  # noqa: F401
        from nnabla_ext.cuda import StreamEventHandler
    except Exception as err:  # ImportError, or OSError from a missing libcuda
        raise ContextError(
            f"context '{name}' needs a working NNabla CUDA extension ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'not importable'}); install it with "
            f"`pip install nnabla-ext-cuda120==1.39.0` (or `pip install -e .[cuda]`) on a machine with an "
            f"NVIDIA driver, or run with `-c cpu`") from None
    ctx = get_extension_context(name, device_id=str(device_id), type_config=type_config)
    return ctx, StreamEventHandler(int(device_id))


def set_hydra_context(run_dir: str = ".") -> None:
    """NNablaNAS's ProgressMeter / get_output_path / Module.load_parameters call ``HydraConfig.get()``;
    outside ``@hydra.main`` we install an equivalent config whose run dir is ``run_dir``."""
    from hydra.conf import HydraConf
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"hydra": OmegaConf.structured(HydraConf)})
    cfg.hydra.run.dir = run_dir
    cfg.hydra.output_subdir = ""
    cfg.hydra.runtime.cwd = os.getcwd()
    HydraConfig.instance().set_config(cfg)


def use_context(ctx) -> None:
    nn.set_default_context(ctx)
