"""NNablaNAS runners that tie the pipeline together, and the launcher that builds them from a config.

Registered under these names (``args.algorithm`` / ``-a``):

* ``DetOFA``: every phase of DetOFA (Algorithm 1) in one output folder (``detofa``);
* ``DetOFASupernetTrainer``: one sampled path per step (OFA w/o PS, CompOFA*, progressive shrinking);
* ``PathFilterRunner`` (also ``DetOFAPathFilterRunner``): label paths of a supernet, train the filter;
* ``SpacePruner``: operation pruning and path-pruning thresholds from a filter (``pruned_space.json``);
* ``PrunedSamplingTrainer``: supernet training on a pruned space with path pruning;
* ``DetOFASearcher``: the best path per FLOPs budget, its test AP, .nnp / ONNX export (``pareto.json``);
* ``ClassificationPretrainer``: the backbone as a classifier of object crops (the demo's ImageNet).
"""
from ..compat import ensure_host

ensure_host()  # nnabla_nas.runner cannot be imported from the 0.15.0 wheel alone

from .classification_pretrainer import ClassificationPretrainer  # noqa: E402
from .detofa import DetOFA  # noqa: E402
from .path_filter_runner import DetOFAPathFilterRunner  # noqa: E402
from .pruned_trainer import PrunedSamplingTrainer, SpacePruner  # noqa: E402
from .searcher import DetOFASearcher  # noqa: E402
from .supernet_trainer import DetOFASupernetTrainer  # noqa: E402

PathFilterRunner = DetOFAPathFilterRunner

RUNNERS = {
    "DetOFA": DetOFA,
    "DetOFASupernetTrainer": DetOFASupernetTrainer,
    "PathFilterRunner": PathFilterRunner,
    "DetOFAPathFilterRunner": DetOFAPathFilterRunner,
    "SpacePruner": SpacePruner,
    "PrunedSamplingTrainer": PrunedSamplingTrainer,
    "DetOFASearcher": DetOFASearcher,
    "ClassificationPretrainer": ClassificationPretrainer,
}

__all__ = list(RUNNERS) + ["RUNNERS"]
