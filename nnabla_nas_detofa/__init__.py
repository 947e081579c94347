"""DetOFA for NNablaNAS: an OFA-ResNet50 + CenterNet detection supernet, path filter, pruning and search.

Importing the package (or ``nnabla_nas_detofa.space``) loads nothing heavier than numpy. The
plug-in enters NNablaNAS's lookup tables only when :func:`register` is called (the ``nnabla_nas``
launcher does it): then ``"network": {"detofa_resnet50": ...}``, our runners and the
``detofa_voc`` / ``detofa_coco`` loaders resolve like NNablaNAS's own. Modules that import NNablaNAS
apply the 0.15.0 wheel work-around themselves (``compat.ensure_host``).
"""
__version__ = "0.1.0"


def register():
    """Register the DetOFA network, runners and data loaders into NNablaNAS (idempotent)."""
    from .registry import register as _register
    return _register()
