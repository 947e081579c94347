"""Architecture math: arch dicts, spaces, sampling, analytic FLOPs, buckets, tokens (numpy only)."""
from .arch import (BASE_DEPTHS, DEPTH_CHOICES, EXPAND_CHOICES, N_SLOTS, N_STAGES, STAGE_SLOTS,
                   STEM_DEPTH_CHOICES, WIDTH_CHOICES, Arch, ArchError, load_archs)
from .buckets import Buckets, flops_range, space_buckets
from .config import ConfigError, SupernetConfig, check_input_size, make_divisible
from .flops import PARTS, mflops
from .layers import Layer, path_layers, space_layers
from .params import mparams, param_count
from .spaces import (SPACE_NAMES, PS_EPOCHS, PS_STAGES, SearchSpace, SpaceError, decision_points, get_space,
                     make_space, space_from_spec)
from .tokens import BLOCK_INDEX, SEQ_LEN, Tokenizer, tokenize, vocabulary

__all__ = [n for n in dir() if not n.startswith("_")]
