"""Transfer: import an ImageNet OFA-ResNet50 supernet (once-for-all's torch checkpoint, NNablaNAS's
``.h5``) as the DetOFA supernet's backbone. ``import_supernet(source, config) -> (arrays, report)``
is the one entry used by ``import-weights`` and by the networks' ``pretrained`` argument.

Importing this package loads numpy and the standard library only (nnabla only to read or write .h5).
"""
from .importer import (BACKBONE_MARKER, OFA_DOWNLOAD, TransferError, format_report, import_supernet, save_backbone,
                       sniff)
from .names import backbone_shapes, nnabla_nas_name_map, ofa_name_map
from .torch_reader import CheckpointError, load_torch_checkpoint

__all__ = ["import_supernet", "format_report", "save_backbone", "sniff", "TransferError", "CheckpointError",
           "load_torch_checkpoint", "backbone_shapes", "ofa_name_map", "nnabla_nas_name_map", "BACKBONE_MARKER",
           "OFA_DOWNLOAD"]
