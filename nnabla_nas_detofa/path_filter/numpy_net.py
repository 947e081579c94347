"""The path filter network in numpy: forward pass and its exact gradient (backward pass).

The same computation as ``PathFilter.graph`` (the NNabla graph), on the same parameters:
embeddings + positional encodings -> ``n_layers`` post-LN transformer encoder layers
(``PF.transformer_encode``: multi-head self-attention, residual, layer norm, ReLU feed-forward,
residual, layer norm) -> mean over positions -> two ReLU FC layers -> a 1-unit FC = the logit;
with the wide head (``config.wide``), plus a linear function of the path's one-hot features: one
learned weight per (position, token) pair, summed over positions, and one per choice of every
decision (the one-hot encoding once-for-all's accuracy predictor uses; ``choice_map`` writes it
as an affine function of the token one-hots, so the head reads nothing but the tokens). The score
is the logit's sigmoid.

Why numpy: on a CPU, NNabla's element-wise and layer-norm kernels dominate a training step of this
small model (their backward passes took ~2/3 of a step in a profile); numpy with BLAS runs the same
step several times faster. The NNabla graph stays the reference: tests check that this forward
pass and its gradients equal the graph's forward and ``backward()`` (to float32 rounding), and
training updates the NNabla parameters with an NNabla solver.

Parameters are addressed by their names under the filter's scope (``"token_embed/embed/W"``, ...).
"""
import functools
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..space import (BASE_DEPTHS, DEPTH_CHOICES, EXPAND_CHOICES, N_SLOTS, N_STAGES, SEQ_LEN, STEM_DEPTH_CHOICES,
                     WIDTH_CHOICES, Tokenizer)
from ..space.arch import STAGE_FIRST_SLOT

LN_EPS = 1e-5
WIDE_TOKEN = "wide/token/W"
WIDE_CHOICE = "wide/choice/W"
N_CHOICES = (len(STEM_DEPTH_CHOICES) + 6 * len(WIDTH_CHOICES) + N_STAGES * len(DEPTH_CHOICES)
             + N_SLOTS * len(EXPAND_CHOICES))


@functools.lru_cache(maxsize=8)
def choice_map(vocab: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """(A (SEQ_LEN * V, 86), c0 (86,)) with ``onehot(tokens) @ A + c0`` = the one-hot of every
    choice (``baselines.choice_features``: stem depth, 6 widths, 4 stage depths, 18 expand ratios,
    zero for dropped slots) of any path, ``onehot`` the (position, token) indicator row.

    Stem depth and widths come from the stem token; a stage's width from its first unit's token
    (always active); a slot's expand ratio from its token; a stage's depth d from whether its two
    optional units are skipped: [d=0] = [SC at base], [d=1] = [SC at base+1] - [SC at base],
    [d=2] = 1 - [SC at base+1]."""
    tok = Tokenizer(tuple(vocab))
    V = len(tok.vocab)
    a = np.zeros((SEQ_LEN * V, N_CHOICES), np.float32)
    c0 = np.zeros(N_CHOICES, np.float32)
    nw = len(WIDTH_CHOICES)
    col_w = len(STEM_DEPTH_CHOICES)
    col_d = col_w + 6 * nw
    col_e = col_d + N_STAGES * len(DEPTH_CHOICES)
    for r in range(2):
        for w0 in range(nw):
            for w1 in range(nw):
                row = int(tok.stem[r, w0, w1])
                if row == 0:
                    continue
                a[row, STEM_DEPTH_CHOICES.index(2 if r else 0)] = 1
                a[row, col_w + w0] = 1
                a[row, col_w + nw + w1] = 1
    for k in range(N_SLOTS):
        pos = 1 + k
        for w in range(nw):
            for e in range(len(EXPAND_CHOICES)):
                row = int(tok.unit[w, e])
                if row == 0:
                    continue
                a[pos * V + row, col_e + 3 * k + e] = 1
                stage = [s for s in range(N_STAGES) if STAGE_FIRST_SLOT[s] <= k][-1]
                if k == STAGE_FIRST_SLOT[stage]:
                    a[pos * V + row, col_w + nw * (2 + stage) + w] = 1
    sc = tok.skip
    for s in range(N_STAGES):
        pa = 1 + STAGE_FIRST_SLOT[s] + BASE_DEPTHS[s]  # the first optional unit
        pb = pa + 1
        d0, d1, d2 = (col_d + 3 * s + DEPTH_CHOICES.index(d) for d in (0, 1, 2))
        a[pa * V + sc, d0] += 1
        a[pb * V + sc, d1] += 1
        a[pa * V + sc, d1] -= 1
        a[pb * V + sc, d2] -= 1
        c0[d2] = 1
    return a, c0


def _mha(i: int) -> str:
    return f"encoder{i}/transformer_encode/src_self_attn/multi_head_attention/"


def _enc(i: int) -> str:
    return f"encoder{i}/transformer_encode/"


def wide_offsets(vocab_size: int) -> np.ndarray:
    """Row offset of each position in the wide table: row = position * vocab_size + token id."""
    return (np.arange(SEQ_LEN) * vocab_size).astype(np.int64)


class NumpyNet:
    """Forward / backward of the filter network on ``params`` (name -> array, read at every call,
    so views on the NNabla parameters follow the solver's in-place updates)."""

    def __init__(self, config, pe: np.ndarray, params: Dict[str, np.ndarray]):
        self.c = config
        self.pe = np.asarray(pe, np.float32)
        self.p = params
        self.offsets = wide_offsets(len(config.vocab))
        if config.wide:
            self.choice_a, self.choice_c0 = choice_map(tuple(config.vocab))

    def wide_table(self) -> np.ndarray:
        """The wide head's effective weight per (position, token) row: token weights + A @ choice weights."""
        return self.p[WIDE_TOKEN][:, 0] + self.choice_a @ self.p[WIDE_CHOICE][:, 0]

    # --- building blocks -------------------------------------------------------------------
    @staticmethod
    def _layer_norm(x, g, b):
        mu = x.mean(axis=1, keepdims=True)
        xc = x - mu
        var = np.einsum("ij,ij->i", xc, xc)[:, None] / x.shape[1]
        rstd = 1.0 / np.sqrt(var + LN_EPS)
        xhat = xc * rstd
        return xhat * g + b, xhat, rstd

    @staticmethod
    def _layer_norm_back(dy, xhat, rstd, g):
        dg = np.einsum("ij,ij->j", dy, xhat)
        db = dy.sum(axis=0)
        dxh = dy * g
        m1 = dxh.mean(axis=1, keepdims=True)
        m2 = np.einsum("ij,ij->i", dxh, xhat)[:, None] / dy.shape[1]
        return rstd * (dxh - m1 - xhat * m2), dg, db

    def _qkv(self, i: int, qs: np.float32):
        p, m = self.p, _mha(i)
        w = np.concatenate([p[m + "q_weight"] * qs, p[m + "k_weight"], p[m + "v_weight"]], axis=1)
        b = np.concatenate([p[m + "q_bias"] * qs, p[m + "k_bias"], p[m + "v_bias"]])
        return w, b

    # --- forward ---------------------------------------------------------------------------
    def forward(self, ids: np.ndarray, rows: np.ndarray, keep: bool = False):
        """Logits (B,) of token ids (B, L) and bucket rows (B,); with ``keep`` also the cache
        ``backward`` needs."""
        c, p = self.c, self.p
        ids = np.asarray(ids, np.int64)
        rows = np.asarray(rows, np.int64)
        B, L = ids.shape
        D, H = c.d_model, c.n_heads
        hd = D // H
        qs = np.float32(hd ** -0.5)
        x = np.empty((B, L, D), np.float32)
        x[:, :, :c.token_dim] = p["token_embed/embed/W"][ids]
        x[:, :, c.token_dim:] = p["bucket_embed/embed/W"][rows][:, None, :]
        x += self.pe[None, :L]
        x = x.reshape(B * L, D)
        caches: List[Tuple] = []
        for i in range(c.n_layers):
            m, e = _mha(i), _enc(i)
            qkv_w, qkv_b = self._qkv(i, qs)
            qkv = x @ qkv_w
            qkv += qkv_b
            q, k, v = np.ascontiguousarray(qkv.reshape(B, L, 3, H, hd).transpose(2, 0, 3, 1, 4))
            s = q @ k.transpose(0, 1, 3, 2)  # (B, H, L, L)
            s -= s.max(axis=-1, keepdims=True)
            np.exp(s, out=s)
            s /= s.sum(axis=-1, keepdims=True)
            a = (s @ v).transpose(0, 2, 1, 3).reshape(B * L, D)
            o = a @ p[m + "out_weight"]
            o += p[m + "out_bias"]
            o += x
            y1, xh1, rs1 = self._layer_norm(o, p[e + "enc_layer_norm1/layer_normalization/gamma"].reshape(-1),
                                            p[e + "enc_layer_norm1/layer_normalization/beta"].reshape(-1))
            f1 = y1 @ p[e + "enc_affine1/affine/W"]
            f1 += p[e + "enc_affine1/affine/b"]
            np.maximum(f1, 0, out=f1)
            f2 = f1 @ p[e + "enc_affine2/affine/W"]
            f2 += p[e + "enc_affine2/affine/b"]
            f2 += y1
            xn, xh2, rs2 = self._layer_norm(f2, p[e + "enc_layer_norm2/layer_normalization/gamma"].reshape(-1),
                                            p[e + "enc_layer_norm2/layer_normalization/beta"].reshape(-1))
            if keep:
                caches.append((x, q, k, v, s, a, xh1, rs1, y1, f1, xh2, rs2))
            x = xn
        h0 = x.reshape(B, L, D).mean(axis=1)
        h1 = np.maximum(h0 @ p["fc1/affine/W"] + p["fc1/affine/b"], 0)
        h2 = np.maximum(h1 @ p["fc2/affine/W"] + p["fc2/affine/b"], 0)
        z = (h2 @ p["out/affine/W"] + p["out/affine/b"]).reshape(-1)
        wide_rows = None
        if c.wide:
            wide_rows = ids + self.offsets[None, :L]
            z = z + self.wide_table()[wide_rows].sum(axis=1) + float(self.choice_c0 @ p[WIDE_CHOICE][:, 0])
        if not keep:
            return z
        return z, (ids, rows, caches, h0, h1, h2, wide_rows)

    # --- backward --------------------------------------------------------------------------
    def backward(self, cache, dz: np.ndarray) -> Dict[str, np.ndarray]:
        """Gradients of ``sum(dz * logits)`` with respect to every parameter (same names and shapes)."""
        c, p = self.c, self.p
        ids, rows, caches, h0, h1, h2, wide_rows = cache
        dz = np.asarray(dz, np.float32).reshape(-1, 1)
        B, L = ids.shape
        D, H = c.d_model, c.n_heads
        hd = D // H
        qs = np.float32(hd ** -0.5)
        g: Dict[str, np.ndarray] = {}
        g["out/affine/W"] = h2.T @ dz
        g["out/affine/b"] = dz.sum(axis=0)
        d = (dz @ p["out/affine/W"].T) * (h2 > 0)
        g["fc2/affine/W"] = h1.T @ d
        g["fc2/affine/b"] = d.sum(axis=0)
        d = (d @ p["fc2/affine/W"].T) * (h1 > 0)
        g["fc1/affine/W"] = h0.T @ d
        g["fc1/affine/b"] = d.sum(axis=0)
        d = d @ p["fc1/affine/W"].T  # (B, D)
        dx = np.repeat(d[:, None, :] / np.float32(L), L, axis=1).reshape(B * L, D)
        for i in reversed(range(c.n_layers)):
            m, e = _mha(i), _enc(i)
            x, q, k, v, s, a, xh1, rs1, y1, f1, xh2, rs2 = caches[i]
            ln2, ln1 = e + "enc_layer_norm2/layer_normalization/", e + "enc_layer_norm1/layer_normalization/"
            dr2, dg2, db2 = self._layer_norm_back(dx, xh2, rs2, p[ln2 + "gamma"].reshape(-1))
            g[ln2 + "gamma"] = dg2.reshape(p[ln2 + "gamma"].shape)
            g[ln2 + "beta"] = db2.reshape(p[ln2 + "beta"].shape)
            g[e + "enc_affine2/affine/W"] = f1.T @ dr2
            g[e + "enc_affine2/affine/b"] = dr2.sum(axis=0)
            df1 = (dr2 @ p[e + "enc_affine2/affine/W"].T) * (f1 > 0)
            g[e + "enc_affine1/affine/W"] = y1.T @ df1
            g[e + "enc_affine1/affine/b"] = df1.sum(axis=0)
            dy1 = dr2 + df1 @ p[e + "enc_affine1/affine/W"].T
            dr1, dg1, db1 = self._layer_norm_back(dy1, xh1, rs1, p[ln1 + "gamma"].reshape(-1))
            g[ln1 + "gamma"] = dg1.reshape(p[ln1 + "gamma"].shape)
            g[ln1 + "beta"] = db1.reshape(p[ln1 + "beta"].shape)
            g[m + "out_weight"] = a.T @ dr1
            g[m + "out_bias"] = dr1.sum(axis=0)
            da = (dr1 @ p[m + "out_weight"].T).reshape(B, L, H, hd).transpose(0, 2, 1, 3)  # (B, H, L, hd)
            dp = da @ v.transpose(0, 1, 3, 2)
            dv = s.transpose(0, 1, 3, 2) @ da
            ds = s * (dp - np.einsum("bhij,bhij->bhi", dp, s)[..., None])
            dq = ds @ k
            dk = ds.transpose(0, 1, 3, 2) @ q
            dqkv = np.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4).reshape(B * L, 3 * D)
            dw = x.T @ dqkv
            db = dqkv.sum(axis=0)
            g[m + "q_weight"], g[m + "k_weight"], g[m + "v_weight"] = dw[:, :D] * qs, dw[:, D:2 * D], dw[:, 2 * D:]
            g[m + "q_bias"], g[m + "k_bias"], g[m + "v_bias"] = db[:D] * qs, db[D:2 * D], db[2 * D:]
            qkv_w, _ = self._qkv(i, qs)
            dx = dr1 + dqkv @ qkv_w.T
        dx = dx.reshape(B, L, D)
        V = len(c.vocab)
        onehot = np.zeros((B * L, V), np.float32)
        onehot[np.arange(B * L), ids.reshape(-1)] = 1.0
        g["token_embed/embed/W"] = onehot.T @ dx[:, :, :c.token_dim].reshape(B * L, c.token_dim)
        db_rows = np.zeros((c.n_bucket_rows, c.bucket_dim), np.float32)
        np.add.at(db_rows, rows, dx[:, :, c.token_dim:].sum(axis=1))
        g["bucket_embed/embed/W"] = db_rows
        if c.wide:
            n_rows = p[WIDE_TOKEN].shape[0]
            g_rows = np.bincount(wide_rows.reshape(-1), weights=np.repeat(dz[:, 0], L), minlength=n_rows)
            g[WIDE_TOKEN] = g_rows.astype(np.float32).reshape(n_rows, 1)
            g[WIDE_CHOICE] = (self.choice_a.T @ g_rows + self.choice_c0 * float(dz.sum())).astype(
                np.float32).reshape(-1, 1)
        return {k: v.astype(np.float32, copy=False) for k, v in g.items()}


def pair_loss_grad(scores: np.ndarray, targets: np.ndarray, weights: np.ndarray):
    """The FLOPs-bounded loss ``sum(W * max(0, 1 - T * (s_i - s_j))^2)`` of a batch (``T``, ``W``
    as for ``loss.pairwise_hinge_loss_nn``) and its gradient with respect to the scores."""
    s = np.asarray(scores, np.float64)
    gap = s[:, None] - s[None, :]
    r = np.maximum(0.0, 1.0 - targets * gap)
    loss = float((weights * r * r).sum())
    dg = -2.0 * weights * r * targets  # d loss / d gap_ij
    return loss, dg.sum(axis=1) - dg.sum(axis=0)
