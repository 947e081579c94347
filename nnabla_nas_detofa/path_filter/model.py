"""The path filter (DetOFA §3.1): a transformer that scores a path under a FLOPs budget.

Input, per path: the 19 tokens of ``space.tokens.tokenize`` (stem + 18 layer slots) and the
FLOPs bucket index.

* Embeddings: a learned token embedding of 96 dims concatenated with a learned bucket embedding
  of 32 dims -> model width 128. Without budget conditioning (ablation ``budget=False``) the
  bucket embedding table has one row, looked up for every path: a learned constant, so the width
  and every other part of the network stay the same and only the conditioning goes away.
* Positional encodings (DetOFA §3, Eq. 3), both added to the 128-d embedding:
  ``P(l, 2i) = sin(l / 10000^(2i / N))``, ``P(l, 2i+1) = cos(l / 10000^(2i / N))`` with ``l``
  the token (layer) index 0..18; the block encoding has the same form with the block index 0..4
  (0 = stem). Ablation ``block_pe=False`` drops the block encoding.
  **Decision:** ``N`` (``max_l`` in DETOFA.md) is the encoding width 128, as in Vaswani et al.
  (``pe_norm='width'``, the default). Read literally as the largest index (18 for layers, 4 for
  blocks; ``pe_norm='index'``), only ~8 of the 128 dimensions vary over the 19 positions and
  the filter learns position-dependent effects much worse (synthetic task, 500 paths, 15 epochs:
  within-bucket Kendall tau 0.36 with 'index' vs 0.55 with 'width').
* 3 encoder layers ``PF.transformer_encode`` (post-LN, 4 heads, width 128, feed-forward 128, no
  dropout), mean-pooled over the 19 positions (**Decision**: mean-pool rather than a CLS token:
  every token reaches the head by the same route), two FC layers of 128 with ReLU, a 1-unit FC
  and a sigmoid: the score (higher = lower validation loss expected).

Parameters live in a private parameter dictionary under the scope ``path_filter`` (never in
NNabla's global scope, so a supernet's parameters and any number of filters coexist) and save to
an ``.h5`` file of their own, next to a JSON file with the vocabulary, buckets and switches.

Scoring runs either the NNabla graph (one graph per batch size, built once and reused) or a numpy
implementation of the same forward pass, read from the same parameters (``backend='numpy'``, the
default: NNabla's CPU affine runs single-threaded and is ~8x slower than numpy's BLAS here). Both
agree to float32 rounding (tested).
"""
import copy
import math
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..atomic import atomic_path, write_json_atomic
from ..reading import read_json
from ..schema import Bool, Choice, Custom, Int, ListOf, Num, Obj, SchemaError, Str, validate
from ..space import (BLOCK_INDEX, SEQ_LEN, Buckets, ConfigError, SearchSpace, SupernetConfig, check_input_size, mflops,
                     vocabulary)
from ..space.tokens import Tokenizer, TokenError
from .numpy_net import WIDE_CHOICE, WIDE_TOKEN, NumpyNet, choice_map, wide_offsets

SCOPE = "path_filter"
FORMAT = "nnabla_nas_detofa.path_filter"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: no wide head, one member (read as wide=False, n_members=1)
MAX_LAYER_INDEX = SEQ_LEN - 1
MAX_BLOCK_INDEX = max(BLOCK_INDEX)
PE_NORMS = ("width", "index")


def _object(v, where):
    if not isinstance(v, dict):
        raise ValueError(f"{where}: expected an object")
    return v


CONFIG_FILE = {   # the keys of a filter's .json (``PathFilterConfig.to_dict``)
    "format": Str(), "version": Int(),
    "vocab": ListOf(Str(), 1, 1_000_000), "buckets": Obj({"lo": Num(0), "hi": Num(0), "n": Int(1, 1000)}),
    "budget": Bool(), "block_pe": Bool(), "pe_norm": Choice(PE_NORMS),
    "wide": Bool(default=False), "n_members": Int(1, 1000, default=1),   # version 2 (version 1: defaults)
    "token_dim": Int(1, 4096), "bucket_dim": Int(1, 4096), "n_layers": Int(0, 64), "n_heads": Int(1, 64),
    "d_ff": Int(1, 65536), "d_fc": Int(1, 65536),
    "supernet": Custom(_object, "an object of supernet settings", nullable=True, default=None),
    "input_size": Int(32, 8192, nullable=True, default=None),
    "meta": Custom(_object, "an object", nullable=True, default=None),
}


class PathFilterError(ValueError):
    """Bad filter files or arguments; the message names the file or argument."""


def sinusoid(positions: Sequence[int], dim: int, max_pos: int) -> np.ndarray:
    """Eq. 3: rows ``P(p, 2i) = sin(p / 10000^(2i / max_pos))``, ``P(p, 2i+1) = cos(...)``."""
    p = np.asarray(positions, np.float64)[:, None]
    i2 = np.arange(0, dim, 2, dtype=np.float64)[None, :]
    ang = p / np.power(10000.0, i2 / float(max_pos))
    out = np.zeros((len(positions), dim))
    out[:, 0::2] = np.sin(ang)
    out[:, 1::2] = np.cos(ang)[:, : dim // 2]
    return out


# --- configuration ---------------------------------------------------------------------------
@dataclass
class PathFilterConfig:
    """Everything needed to rebuild a filter besides its weights.

    ``buckets``: the FLOPs buckets bucket indices are computed with (those of the space the filter
    is trained on). ``supernet`` / ``input_size``: what FLOPs mean, so archs without a "flops"
    value can be scored; optional. ``wide``: the wide head (a linear function of the one-hot
    (position, token) pairs and the one-hot choices, added to the logit; ``numpy_net``). ``n_members``: networks averaged (an ensemble)."""

    vocab: Tuple[str, ...]
    buckets: Buckets
    budget: bool = True
    block_pe: bool = True
    pe_norm: str = "width"
    wide: bool = False
    n_members: int = 1
    token_dim: int = 96
    bucket_dim: int = 32
    n_layers: int = 3
    n_heads: int = 4
    d_ff: int = 128
    d_fc: int = 128
    supernet: Optional[SupernetConfig] = None
    input_size: Optional[int] = None
    meta: Dict = field(default_factory=dict)

    def __post_init__(self):
        self.vocab = tuple(self.vocab)
        if self.pe_norm not in PE_NORMS:
            raise PathFilterError(f"pe_norm={self.pe_norm!r}: expected one of {PE_NORMS}")
        if self.d_model % self.n_heads:
            raise PathFilterError(f"model width {self.d_model} is not divisible by {self.n_heads} heads")
        if isinstance(self.n_members, bool) or not isinstance(self.n_members, int) or self.n_members < 1:
            raise PathFilterError(f"n_members={self.n_members!r}: expected an integer >= 1")
        if self.input_size is not None:
            check_input_size(self.input_size)

    @property
    def d_model(self) -> int:
        return self.token_dim + self.bucket_dim

    @property
    def n_bucket_rows(self) -> int:
        return self.buckets.n if self.budget else 1

    def to_dict(self) -> Dict:
        return {"format": FORMAT, "version": FORMAT_VERSION, "vocab": list(self.vocab),
                "buckets": self.buckets.to_dict(), "budget": self.budget, "block_pe": self.block_pe,
                "pe_norm": self.pe_norm, "wide": self.wide, "n_members": self.n_members,
                "token_dim": self.token_dim, "bucket_dim": self.bucket_dim, "n_layers": self.n_layers,
                "n_heads": self.n_heads, "d_ff": self.d_ff, "d_fc": self.d_fc,
                "supernet": None if self.supernet is None else self.supernet.to_dict(),
                "input_size": self.input_size, "meta": self.meta}

    @classmethod
    def from_dict(cls, obj: Dict, where: str = "path filter config") -> "PathFilterConfig":
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise PathFilterError(f"{where}: not a path filter config (expected \"format\": \"{FORMAT}\")")
        version = obj.get("version")
        if isinstance(version, bool) or version not in READABLE_VERSIONS:
            raise PathFilterError(f"{where}: version {version!r} not supported (this release reads versions "
                                  f"{', '.join(map(str, READABLE_VERSIONS))})")
        try:
            if version < 2 and ("wide" in obj or "n_members" in obj):
                raise PathFilterError(f"{where}: version 1 files have no \"wide\" / \"n_members\" entries")
            v = validate(obj, CONFIG_FILE, "config")
            b = v["buckets"]
            sup = v["supernet"]
            return cls(vocab=tuple(v["vocab"]), buckets=Buckets(b["lo"], b["hi"], b["n"]),
                       budget=v["budget"], block_pe=v["block_pe"], pe_norm=v["pe_norm"],
                       wide=v["wide"], n_members=v["n_members"],
                       token_dim=v["token_dim"], bucket_dim=v["bucket_dim"], n_layers=v["n_layers"],
                       n_heads=v["n_heads"], d_ff=v["d_ff"], d_fc=v["d_fc"],
                       supernet=None if sup is None else SupernetConfig.from_dict(sup, "config.supernet"),
                       input_size=v["input_size"], meta=dict(v["meta"] or {}))
        except (SchemaError, ConfigError, ValueError) as err:
            raise PathFilterError(f"{where}: bad or missing entry: {err}") from None


# --- the model -------------------------------------------------------------------------------
def _nn():
    import nnabla as nn
    import nnabla.functions as F
    import nnabla.parametric_functions as PF
    return nn, F, PF


class PathFilter:
    """A path filter: ``score(archs)`` -> scores in (0, 1), higher = better expected path.

    With ``config.n_members`` > 1 it is an ensemble of that many networks of the same shape (each
    with its own parameters, member ``m`` initialised with ``seed + m``); its logit is the mean of
    the members' logits."""

    def __init__(self, config: PathFilterConfig, seed: int = 0):
        self.config = config
        try:
            self.tokenizer = Tokenizer(config.vocab)
        except TokenError as err:
            raise PathFilterError(f"path filter vocabulary: {err}") from None
        self._roots: List["OrderedDict"] = [OrderedDict() for _ in range(config.n_members)]
        self._graphs: Dict[int, Tuple] = {}
        self._nets: Dict[int, NumpyNet] = {}  # id(root) -> numpy network on views of its parameters
        width_norm = config.pe_norm == "width"
        pe = sinusoid(range(SEQ_LEN), config.d_model, config.d_model if width_norm else MAX_LAYER_INDEX)
        if config.block_pe:
            pe = pe + sinusoid(BLOCK_INDEX, config.d_model, config.d_model if width_norm else MAX_BLOCK_INDEX)
        self.pe = pe.astype(np.float32)
        self._create_parameters(seed)

    # --- parameters ----------------------------------------------------------------------
    def _create_parameters(self, seed: int):
        nn, _, _ = _nn()
        import nnabla.random as nr
        saved = nr.prng
        try:
            for m, root in enumerate(self._roots):
                nr.prng = np.random.RandomState(seed + m)
                self._logit_graph(root, nn.Variable((1, SEQ_LEN)), nn.Variable((1,)))
        finally:
            nr.prng = saved

    @property
    def n_members(self) -> int:
        return len(self._roots)

    @staticmethod
    def member_name(m: int, name: str) -> str:
        """The saved name of member ``m``'s parameter ``name`` ("path_filter/..."): unchanged for
        member 0, "path_filter/member{m}/..." for the others."""
        return name if m == 0 else f"{SCOPE}/member{m}/{name[len(SCOPE) + 1:]}"

    def parameters(self) -> "OrderedDict":
        """``{"path_filter/...": nn.Variable}``: every parameter of this filter, and only them
        (member ``m`` > 0 of an ensemble under "path_filter/member{m}/...")."""
        nn, _, _ = _nn()
        out: "OrderedDict" = OrderedDict()
        for m, root in enumerate(self._roots):
            with nn.parameter_scope("", root):
                for k, v in nn.get_parameters(grad_only=False).items():
                    out[self.member_name(m, k)] = v
        return out

    def state(self) -> Dict[str, np.ndarray]:
        return {k: v.d.copy() for k, v in self.parameters().items()}

    def set_state(self, state: Dict[str, np.ndarray], where: str = "state"):
        params = self.parameters()
        missing = sorted(set(params) - set(state))
        extra = sorted(set(state) - set(params))
        if missing or extra:
            raise PathFilterError(f"{where}: parameters do not match the filter "
                                  f"(missing {missing[:3]}, unexpected {extra[:3]})")
        for k, v in params.items():
            if tuple(state[k].shape) != tuple(v.shape):
                raise PathFilterError(f"{where}: parameter {k} has shape {tuple(state[k].shape)}, "
                                      f"expected {tuple(v.shape)}")
            v.d = state[k]
        self.refresh()

    def refresh(self) -> None:
        """Forget the cached numpy networks (they hold views on the parameter arrays). Assigning a
        parameter (``v.d = array``) gives it new memory that those views do not see; ``set_state``
        and ``load`` call this, and so must code that assigns parameters directly. Updates in place
        (NNabla's solvers, ``v.d[...] = ...``) show through the views and need no refresh."""
        self._nets.clear()

    def member(self, m: int) -> "PathFilter":
        """Member ``m`` as a one-network filter sharing this filter's parameters (training it
        trains the ensemble's member); the filter itself when it has one member."""
        if not 0 <= m < self.n_members:
            raise PathFilterError(f"member {m}: the filter has {self.n_members} member(s)")
        if self.n_members == 1:
            return self
        cfg = copy.deepcopy(self.config)
        cfg.n_members = 1
        out = PathFilter.__new__(PathFilter)
        out.config, out.tokenizer, out.pe = cfg, self.tokenizer, self.pe
        out._roots, out._graphs = [self._roots[m]], {}
        out._nets = self._nets  # shared: a set_state on the member also refreshes the ensemble
        return out

    @classmethod
    def ensemble_of(cls, members: Sequence["PathFilter"]) -> "PathFilter":
        """One filter averaging the logits of ``members`` (one-network filters of one config)."""
        if not members:
            raise PathFilterError("an ensemble needs at least one member")
        base = members[0].config
        for i, f in enumerate(members):
            if f.n_members != 1:
                raise PathFilterError(f"member {i} is itself an ensemble")
            a = dict(f.config.to_dict(), meta=None)
            if a != dict(base.to_dict(), meta=None):
                raise PathFilterError(f"member {i} has another configuration than member 0")
        cfg = copy.deepcopy(base)
        cfg.n_members = len(members)
        out = cls(cfg)
        state = {}
        for m, f in enumerate(members):
            state.update({cls.member_name(m, k): v for k, v in f.state().items()})
        out.set_state(state, where="ensemble members")
        return out

    def copy(self) -> "PathFilter":
        other = PathFilter(copy.deepcopy(self.config))
        other.set_state(self.state())
        return other

    # --- NNabla graph --------------------------------------------------------------------
    def _logit_graph(self, root, tok, bkt):
        """Logits (B,) of one member (its parameters in ``root``)."""
        nn, F, PF = _nn()
        c = self.config
        b, L = tok.shape
        with nn.parameter_scope(SCOPE, root):
            te = PF.embed(tok, len(c.vocab), c.token_dim, name="token_embed")
            be = PF.embed(bkt, c.n_bucket_rows, c.bucket_dim, name="bucket_embed")
            be = F.broadcast(F.reshape(be, (b, 1, c.bucket_dim)), (b, L, c.bucket_dim))
            h = F.concatenate(te, be, axis=2) + nn.Variable.from_numpy_array(self.pe[None])
            h = F.transpose(h, (1, 0, 2))  # (L, B, E) as transformer_encode expects
            for i in range(c.n_layers):
                h = PF.transformer_encode(h, c.d_model, c.n_heads, dim_feedforward=c.d_ff, dropout=0.0,
                                          name=f"encoder{i}")
            h = F.mean(h, axis=0)
            h = F.relu(PF.affine(h, c.d_fc, name="fc1"))
            h = F.relu(PF.affine(h, c.d_fc, name="fc2"))
            z = F.reshape(PF.affine(h, 1, name="out"), (b,))
            if c.wide:
                from nnabla.initializer import ConstantInitializer
                from nnabla.parameter import get_parameter_or_create
                zero = ConstantInitializer(0.0)
                a, c0 = choice_map(tuple(c.vocab))
                w_tok = get_parameter_or_create(WIDE_TOKEN, (L * len(c.vocab), 1), zero, True)
                w_ch = get_parameter_or_create(WIDE_CHOICE, (a.shape[1], 1), zero, True)
                table = w_tok + F.affine(nn.Variable.from_numpy_array(a), w_ch)
                rows = tok + nn.Variable.from_numpy_array(wide_offsets(len(c.vocab))[None, :L].astype(np.float32))
                wz = F.sum(F.reshape(F.embed(rows, table), (b, L)), axis=1)
                z = z + wz + F.reshape(F.affine(nn.Variable.from_numpy_array(c0[None, :]), w_ch), (1,))
        return z

    def graph(self, tok, bkt):
        """Scores (B,) of token ids ``tok`` (B, 19) and bucket indices ``bkt`` (B,), as an NNabla
        graph on this filter's parameters: the sigmoid of the (members' mean) logit."""
        _, F, _ = _nn()
        zs = [self._logit_graph(root, tok, bkt) for root in self._roots]
        z = zs[0]
        for other in zs[1:]:
            z = z + other
        if len(zs) > 1:
            z = z * (1.0 / len(zs))
        return F.sigmoid(z)

    def _score_nnabla(self, ids: np.ndarray, bkt: np.ndarray, batch_size: int) -> np.ndarray:
        nn, _, _ = _nn()
        bs = min(batch_size, len(ids))
        if bs not in self._graphs:
            tok = nn.Variable((bs, SEQ_LEN))
            bv = nn.Variable((bs,))
            self._graphs[bs] = (tok, bv, self.graph(tok, bv))
        tok, bv, out = self._graphs[bs]
        res = np.empty(len(ids), np.float32)
        for i in range(0, len(ids), bs):
            n = min(bs, len(ids) - i)
            t = np.zeros((bs, SEQ_LEN), np.int32)
            t[:n] = ids[i:i + n]
            b = np.zeros(bs, np.int32)
            b[:n] = bkt[i:i + n]
            tok.d, bv.d = t, b
            out.forward(clear_buffer=True)
            res[i:i + n] = out.d[:n]
        return res

    # --- numpy forward -------------------------------------------------------------------
    def param_arrays(self) -> Dict[str, np.ndarray]:
        """``{name under the scope: array}``: views on the parameters (the solver's in-place
        updates show through them)."""
        return {k[len(SCOPE) + 1:]: v.d for k, v in self.parameters().items()}

    def numpy_net(self) -> NumpyNet:
        """A new numpy network of a one-network filter (of an ensemble: ``member(m).numpy_net()``)."""
        if self.n_members != 1:
            raise PathFilterError("numpy_net() of an ensemble: use member(m).numpy_net()")
        return NumpyNet(self.config, self.pe, self.param_arrays())

    def _numpy_nets(self) -> List[NumpyNet]:
        """One numpy network per member, built once and reused by every scoring call (building one
        reads every parameter array through NNabla, ~70 us each: most of the cost of scoring a
        few paths); ``refresh`` forgets them."""
        nets = []
        for m, root in enumerate(self._roots):
            net = self._nets.get(id(root))
            if net is None:
                net = self._nets[id(root)] = self.member(m).numpy_net()
            nets.append(net)
        return nets

    def logits_ids(self, ids: np.ndarray, bucket_rows: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """The logits (scores before the sigmoid, float64) of token ids and bucket rows, by numpy."""
        nets = self._numpy_nets()
        ids = np.asarray(ids, np.int64)
        rows = np.asarray(bucket_rows, np.int64)
        res = np.zeros(len(ids), np.float64)
        for i in range(0, len(ids), batch_size):
            for net in nets:
                z = net.forward(ids[i:i + batch_size], rows[i:i + batch_size])
                res[i:i + len(z)] += z
        return res / len(nets)

    def _score_numpy(self, ids: np.ndarray, bkt: np.ndarray, batch_size: int) -> np.ndarray:
        # float64: a float32 sigmoid rounds logits above ~17 to exactly 1.0 and would tie their ranks
        return 1.0 / (1.0 + np.exp(-self.logits_ids(ids, bkt, batch_size)))

    # --- public API ----------------------------------------------------------------------
    def flops_of(self, archs: Sequence) -> np.ndarray:
        c = self.config
        if c.supernet is None or c.input_size is None:
            raise PathFilterError("no FLOPs given and the filter does not know the supernet / input size "
                                  "(train it with them to score archs without FLOPs)")
        return np.array([mflops(a, c.supernet, c.input_size) for a in archs], np.float64)

    def bucket_indices(self, flops) -> np.ndarray:
        """Bucket embedding row per path: the FLOPs bucket, or 0 for all without budget conditioning."""
        idx = self.config.buckets.indices(flops)
        return idx if self.config.budget else np.zeros_like(idx)

    def inputs(self, archs: Sequence, flops=None, bucket=None) -> Tuple[np.ndarray, np.ndarray]:
        """(token ids (N, 19), bucket rows (N,)) for ``archs``; ``bucket`` overrides the FLOPs bucket."""
        ids = self.tokenizer.ids(archs)
        if bucket is not None:
            b = np.asarray(bucket, np.int64).reshape(-1)
            if len(b) != len(ids):
                raise PathFilterError(f"{len(b)} bucket indices for {len(ids)} archs")
            if len(b) and (b.min() < 0 or b.max() >= self.config.buckets.n):
                raise PathFilterError(f"bucket indices must be in 0..{self.config.buckets.n - 1}")
            b = b if self.config.budget else np.zeros_like(b)
        else:
            f = self.flops_of(archs) if flops is None else np.asarray(flops, np.float64).reshape(-1)
            if len(f) != len(ids):
                raise PathFilterError(f"{len(f)} FLOPs values for {len(ids)} archs")
            if not np.all(np.isfinite(f)):
                raise PathFilterError("FLOPs values must be finite")
            b = self.bucket_indices(f)
        return ids, b.astype(np.int32)

    def score(self, archs: Sequence, flops=None, bucket=None, batch_size: int = 256,
              backend: str = "numpy") -> np.ndarray:
        """Scores of ``archs`` (Arch or dicts) as a float64 array, in order.

        ``flops``: MFLOPs per arch (computed from the filter's supernet config when None);
        ``bucket``: explicit bucket indices (e.g. of a pruned space), taking precedence over
        ``flops``. ``backend``: 'numpy' (fast) or 'nnabla' (the NNabla graph)."""
        if backend not in ("numpy", "nnabla"):
            raise PathFilterError(f"backend={backend!r}: expected 'numpy' or 'nnabla'")
        if len(archs) == 0:
            return np.zeros(0)
        ids, b = self.inputs(archs, flops, bucket)
        return self.score_ids(ids, b, batch_size, backend)

    def logits(self, archs: Sequence, flops=None, bucket=None, batch_size: int = 256) -> np.ndarray:
        """The logits of ``archs`` (``score`` before the sigmoid; same arguments, same ranking): they
        do not saturate where confident scores all round to 1.0, so a search can still tell them apart."""
        if len(archs) == 0:
            return np.zeros(0)
        ids, b = self.inputs(archs, flops, bucket)
        return self.logits_ids(ids, b, batch_size)

    def score_ids(self, ids: np.ndarray, bucket_rows: np.ndarray, batch_size: int = 256,
                  backend: str = "numpy") -> np.ndarray:
        fn = self._score_numpy if backend == "numpy" else self._score_nnabla
        return np.asarray(fn(np.asarray(ids, np.int32), np.asarray(bucket_rows, np.int32), int(batch_size)),
                          np.float64)

    # --- files ---------------------------------------------------------------------------
    @staticmethod
    def json_path(h5_path: str) -> str:
        return os.path.splitext(h5_path)[0] + ".json"

    def save(self, h5_path: str) -> None:
        """Write ``h5_path`` (the parameters) and the JSON config next to it (same stem), each atomically."""
        nn, _, _ = _nn()
        if not h5_path.endswith(".h5"):
            raise PathFilterError(f"{h5_path}: the weights file must end in .h5")
        with atomic_path(h5_path, suffix=".h5") as tmp:
            nn.save_parameters(tmp, params=self.parameters())
        write_json_atomic(self.json_path(h5_path), self.config.to_dict(), indent=1)

    @classmethod
    def load(cls, h5_path: str) -> "PathFilter":
        """A filter from ``X.h5`` and ``X.json``; PathFilterError names the file on any problem."""
        nn, _, _ = _nn()
        jp = cls.json_path(h5_path)
        for path in (h5_path, jp):
            if not os.path.isfile(path):
                raise PathFilterError(f"{path}: no such file (a filter is a .h5 and a .json with the same name)")
        obj = read_json(jp, PathFilterError, "path filter config")
        flt = cls(PathFilterConfig.from_dict(obj, where=jp))
        root: "OrderedDict" = OrderedDict()
        try:
            with nn.parameter_scope("", root):
                nn.load_parameters(h5_path)
                loaded = nn.get_parameters(grad_only=False)
        except Exception as err:  # h5py / nnabla raise many types for unreadable files
            raise PathFilterError(f"{h5_path}: cannot read parameters ({type(err).__name__}: {err})") from None
        flt.set_state({k: v.d for k, v in loaded.items()}, where=h5_path)
        return flt


def default_vocabulary(space: Optional[SearchSpace] = None) -> Tuple[str, ...]:
    from ..space import get_space
    return tuple(vocabulary(space if space is not None else get_space("ofa")))


def count_parameters(flt: PathFilter) -> int:
    return int(sum(math.prod(v.shape) for v in flt.parameters().values()))
