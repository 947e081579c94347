"""The one place where the plugin registers into NNablaNAS's lookup tables.

NNablaNAS has no plugin mechanism: its launcher finds networks as ``contrib.__dict__[name]``
(a module with ``SearchNet``/``TrainNet``), runners as ``runner.__dict__[name]`` (argparse
choices come from ``runner.__all__``) and data as ``dataset.__dict__[name].DataLoader``.
"""
from .compat import ensure_host


def _import_dataset_quietly():
    """nnabla_nas.dataset warns at import that NVIDIA DALI (ImageNet only) is missing; we never use it."""
    import logging

    from nnabla.logger import logger
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        import nnabla_nas.dataset  # noqa: F401  (imported here so its warning is silenced)
    finally:
        logger.setLevel(level)


def register():
    """Set our network, runners and loaders into NNablaNAS's tables; returns the names registered."""
    ensure_host()
    _import_dataset_quietly()
    import nnabla_nas.contrib as contrib
    import nnabla_nas.runner as runner

    from .data import loader
    from .nets import detofa_resnet50
    from .runners import RUNNERS

    contrib.detofa_resnet50 = detofa_resnet50
    if "detofa_resnet50" not in contrib.__all__:
        contrib.__all__.append("detofa_resnet50")
    for name, cls in RUNNERS.items():
        setattr(runner, name, cls)
        if name not in runner.__all__:
            runner.__all__.append(name)
    datasets = loader.register_datasets()
    return {"networks": ["detofa_resnet50"], "runners": sorted(RUNNERS), "datasets": datasets}
