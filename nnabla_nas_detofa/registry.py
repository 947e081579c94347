"""The one place where the plugin registers into NNablaNAS's lookup tables.

NNablaNAS has no plugin mechanism: its launcher finds networks as ``contrib.__dict__[name]``
(a module with ``SearchNet``/``TrainNet``), runners as ``runner.__dict__[name]`` (argparse
choices come from ``runner.__all__``) and data as ``dataset.__dict__[name].DataLoader``.
"""
import types

NETWORK_NAMES = ("detofa_resnet50",)
DATASET_NAMES = ("detofa_voc", "detofa_coco")


def register():
    import nnabla_nas.contrib as contrib
    import nnabla_nas.dataset as dataset
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
    for name, fmt in (("detofa_voc", "voc"), ("detofa_coco", "coco")):
        mod = types.ModuleType(f"nnabla_nas.dataset.{name}", f"DetOFA {fmt.upper()} detection data")
        mod.DataLoader = loader.loader_class(fmt)
        setattr(dataset, name, mod)
        if name not in dataset.__all__:
            dataset.__all__.append(name)
