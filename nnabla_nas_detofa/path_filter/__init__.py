"""The path filter (DetOFA §3): path sets, the transformer ranking model, its FLOPs-bounded loss,
training / fine-tuning, quality metrics and baseline rankers. Depends on ``space`` (and NNabla for
the model)."""
from .baselines import KINDS as BASELINE_KINDS, FlopsRanker, MLPRanker, RidgeRanker, choice_features, fit_baseline
from .loss import pair_targets, pairwise_hinge_loss
from .model import PathFilter, PathFilterConfig, PathFilterError, Tokenizer, default_vocabulary, sinusoid
from .pathset import PathRecord, PathSet, PathSetError, read_arch_lines
from .quality import RATIOS, kendall_tau, kendall_tau_per_bucket, kendall_tau_within, quality_report, weak_detection
from .synthetic import SyntheticTask, synthetic_pathset
from .train import (Split, TrainResult, evaluate, held_out_quality, resolve_buckets, split_indices, train_path_filter,
                    validation_quality)

__all__ = [n for n in dir() if not n.startswith("_")]
