"""Search-space pruning (DetOFA §3.2): operation scores, the three strategies, the pruned space Ã
with exact uniform sampling, path-pruning thresholds and ``pruned_space.json``.

Arch math only: numpy and ``space``; the path filter comes in as any scorer
``score(archs, flops, bucket)`` (a ``PathFilter`` by duck typing), so NNabla is never imported.
"""
from ..space.bucket_uniform import CountingSampler, generator
from .operations import (Operation, PruningError, choices_of, decisions, operation_space, operations, restrict,
                         slot_requirement)
from .pruned_space import (FORMAT, FORMAT_VERSION, PathThresholds, PrunedSampler, PrunedSpace, SampledPath, StepDrawer,
                           file_sha256, filter_id, from_dict, path_thresholds, prune_space)
from .scorer import Scorer
from .scores import OperationScores, ScoreRow, mean_over_buckets, operation_scores, uses
from .strategies import STRATEGIES, PruneResult, check_ratio, n_pruned, prune_operations
from .uniform import Proposal

__all__ = [n for n in dir() if not n.startswith("_")]
