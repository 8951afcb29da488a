"""PyTorch models of the click/conversion pipeline and how they are trained, calibrated,
serialised and run (no Django here; the registry and services live elsewhere).

Models take the arrays of `features.encode`:
  * `DinEsmm`: DIN-style target attention of the candidate (product + category embedding)
    over the shopper's recent products, embeddings of every categorical field, the dense
    features and a wide (first-order) term; two towers, pCTR and pCVR, trained ESMM-style
    on all impressions (pCTCVR = pCTR × pCVR), so p_conversion is valid on impressions.
  * `LogReg`: logistic regression on the same hashed fields and dense features.
  * `Popularity`: the creative's smoothed training CTR.
Training is full-batch-free and Python-light: the encoded arrays become tensors once,
mini-batches are index slices of them (on the GPU, moved there once from pinned memory).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from . import metrics
from .features import Encoded, FeatureSpec

logger = logging.getLogger(__name__)

ERROR_NO_CUDA = "--device cuda was requested but CUDA is not available on this host."
ERROR_DEVICE = "device must be one of: auto, cpu, cuda."
MODEL_KINDS = ("din_esmm", "logreg", "popularity")
ERROR_MODEL_KIND = "model must be one of: " + ", ".join(MODEL_KINDS) + "."


# ---------------------------------------------------------------------------------------
# device


@dataclass(frozen=True)
class DevicePlan:
    device: str  # "cpu" | "cuda"
    autocast_dtype: torch.dtype | None  # bf16 on CUDA, none on CPU (fp32 is faster there)
    pin_memory: bool
    batch_size: int
    threads: int


def cpu_threads(requested: int = 0) -> int:
    """Intra-op threads for CPU training: `requested` when > 0, else the cores not already
    busy (load average). On an oversubscribed box a second thread makes every op wait
    for a core: measured 9x slower at load 7 on 2 cores (docs/benchmarks/train.md)."""
    if requested > 0:
        return requested
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    return max(1, min(cores, int(cores - busy + 0.5)))


def device_plan(requested: str = "auto", *, cuda_available: bool | None = None, threads: int = 0) -> DevicePlan:
    """`auto` → CUDA when present, else CPU. CUDA: bf16 autocast, pinned host memory, large
    batches. CPU: fp32, idle cores as intra-op threads (`cpu_threads`), batches of 2048."""
    if requested not in ("auto", "cpu", "cuda"):
        raise ValueError(ERROR_DEVICE)
    has_cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    if requested == "cuda" and not has_cuda:
        raise ValueError(ERROR_NO_CUDA)
    n_threads = cpu_threads(threads)
    if requested == "cuda" or (requested == "auto" and has_cuda):
        return DevicePlan("cuda", torch.bfloat16, True, 16384, n_threads)
    return DevicePlan("cpu", None, False, 2048, n_threads)


_CPU_INFERENCE = DevicePlan("cpu", None, False, 65536, 1)  # threads are the caller's (see selectors)


def autocast(plan: DevicePlan) -> contextlib.AbstractContextManager[Any]:
    if plan.autocast_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=plan.device, dtype=plan.autocast_dtype)


# ---------------------------------------------------------------------------------------
# models


def _mlp(n_in: int, hidden: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(n_in, h), nn.ReLU()]
        n_in = h
    layers.append(nn.Linear(n_in, 1))
    return nn.Sequential(*layers)


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class DinEsmm(nn.Module):
    def __init__(
        self,
        buckets: int,
        n_sparse: int,
        n_dense: int,
        dim: int = 16,
        hidden: tuple[int, ...] = (128, 64),
        att_hidden: int = 16,
        seq_mean: bool = True,
    ) -> None:
        super().__init__()
        self.arch = {
            "buckets": buckets,
            "n_sparse": n_sparse,
            "n_dense": n_dense,
            "dim": dim,
            "hidden": list(hidden),
            "att_hidden": att_hidden,
            "seq_mean": seq_mean,
        }
        self.seq_mean = seq_mean
        # sparse gradients: a step touches only the rows in the batch (SparseAdam), which on
        # CPU is most of the speed-up over a dense update of the whole hashed table
        self.emb = nn.Embedding(buckets, dim, padding_idx=0, sparse=True)
        nn.init.normal_(self.emb.weight, std=0.05)
        with torch.no_grad():
            self.emb.weight[0].zero_()
        self.wide = nn.Embedding(buckets, 1, padding_idx=0, sparse=True)
        nn.init.zeros_(self.wide.weight)
        # DIN's attention unit MLP([q, k, q-k, q*k]); its first layer is linear, so it is
        # computed as Wq·q + Wk·k + Wp·(q*k): the same function without building the
        # (B, L, 4d) concatenation (q is projected once per example, not once per step)
        self.att_q = nn.Linear(dim, att_hidden)
        self.att_k = nn.Linear(dim, att_hidden, bias=False)
        self.att_p = nn.Linear(dim, att_hidden, bias=False)
        self.att_out = nn.Linear(att_hidden, 1)
        n_in = n_sparse * dim + (3 if seq_mean else 2) * dim + n_dense
        self.ctr = _mlp(n_in, tuple(hidden))
        self.cvr = _mlp(n_in, tuple(h // 2 for h in hidden))  # conversions are rarer: a smaller tower
        self.ctr_bias = nn.Parameter(torch.tensor([-3.5]))
        self.cvr_bias = nn.Parameter(torch.tensor([-2.0]))

    def forward(self, sparse, dense, seq_items, seq_cats, t_item, t_cat):  # type: ignore[no-untyped-def]
        n_f, n_l = sparse.shape[1], seq_items.shape[1]
        ids = torch.cat([sparse, t_item.unsqueeze(1), t_cat.unsqueeze(1), seq_items, seq_cats], dim=1)
        if torch.is_grad_enabled():
            # one lookup of the batch's distinct ids: the sparse gradient then has one row per
            # distinct id (cheap to coalesce), and ids repeat a lot within a batch
            uniq, inv = torch.unique(ids, return_inverse=True)
            table = self.emb(uniq)  # (U, d)
            self.batch_table = table  # for the mini-batch-aware L2 penalty (rows of this batch only)
            # gather each part from the small table (slicing one big gathered tensor would make
            # every slice's backward zero-fill and add a full (B, F + 2 + 2L, d) gradient)
            e = table[inv[:, :n_f]]  # (B, F, d)
            q = table[inv[:, n_f]] + table[inv[:, n_f + 1]]  # (B, d)
            k = table[inv[:, n_f + 2 : n_f + 2 + n_l]] + table[inv[:, n_f + 2 + n_l :]]  # (B, L, d)
            wide = self.wide(uniq)[inv[:, :n_f]].sum(dim=(1, 2))
        else:
            # inference (serving, evaluation): no gradient to keep small, and the sort behind
            # unique() was a quarter of a /rank forward; the same rows, so the same outputs
            emb = self.emb(ids)  # (B, F + 2 + 2L, d)
            e = emb[:, :n_f]
            q = emb[:, n_f] + emb[:, n_f + 1]
            k = emb[:, n_f + 2 : n_f + 2 + n_l] + emb[:, n_f + 2 + n_l :]
            wide = self.wide(sparse).sum(dim=(1, 2))
        mask = seq_items != 0
        h = torch.relu(self.att_q(q).unsqueeze(1) + self.att_k(k) + self.att_p(q.unsqueeze(1) * k))
        logits = self.att_out(h).squeeze(-1)  # (B, L)
        logits = logits.float().masked_fill(~mask, -1e9)
        w = torch.softmax(logits, dim=1) * mask  # rows without history pool to zero
        pooled = (w.unsqueeze(-1).to(k.dtype) * k).sum(1)
        parts = [e.flatten(1), pooled, q, dense.to(e.dtype)]
        if self.seq_mean:
            # the shopper's taste vector: the plain mean of the sequence (candidate-independent)
            m = mask.unsqueeze(-1).to(k.dtype)
            parts.append((k * m).sum(1) / m.sum(1).clamp(min=1.0))
        x = torch.cat(parts, dim=1)
        ctr = self.ctr(x).squeeze(-1) + wide + self.ctr_bias
        cvr = self.cvr(x).squeeze(-1) + self.cvr_bias
        return ctr, cvr


class DinEsmmServing:
    """DinEsmm's inference forward in NumPy, for /rank's one small batch per request: the
    same function as `DinEsmm.forward` without grad (float32 throughout, equal to the
    torch forward within float rounding; tests/ranking/test_nn_serving.py). Torch's
    per-operator dispatch, cold in the cache after the rest of a decision, was most of a
    ~70-candidate forward (1.6 ms in place against 0.4 ms in a warm loop); NumPy's
    operators are a few µs each. When every row carries the same behaviour sequence (one
    shopper's request), the sequence is embedded and projected once, not once per
    candidate."""

    def __init__(self, module: DinEsmm) -> None:
        def arr(t: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(t.detach().cpu().float().numpy())

        self.seq_mean = module.seq_mean
        self.emb = arr(module.emb.weight)
        self.wide = arr(module.wide.weight)[:, 0]
        self.att_q = (arr(module.att_q.weight).T.copy(), arr(module.att_q.bias))
        self.att_k = arr(module.att_k.weight).T.copy()
        self.att_p = arr(module.att_p.weight).T.copy()
        self.att_out = (arr(module.att_out.weight)[0].copy(), float(module.att_out.bias.item()))
        self.ctr = [(arr(m.weight).T.copy(), arr(m.bias)) for m in module.ctr if isinstance(m, nn.Linear)]
        self.cvr = [(arr(m.weight).T.copy(), arr(m.bias)) for m in module.cvr if isinstance(m, nn.Linear)]
        self.ctr_bias = float(module.ctr_bias.item())
        self.cvr_bias = float(module.cvr_bias.item())

    @staticmethod
    def _mlp(x: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        for i, (w, b) in enumerate(layers):
            x = x @ w
            x += b
            if i < len(layers) - 1:
                np.maximum(x, 0.0, out=x)
        return x[:, 0]

    def __call__(self, enc: Encoded) -> tuple[np.ndarray, np.ndarray]:
        """(click logit, conversion logit) per row, float32."""
        emb = self.emb
        n, n_f = enc.sparse.shape
        d = emb.shape[1]
        e = emb.take(enc.sparse.ravel(), axis=0).reshape(n, n_f * d)
        q = emb.take(enc.target_item, axis=0) + emb.take(enc.target_cat, axis=0)  # (B, d)
        seq_items, seq_cats = enc.seq_items, enc.seq_cats
        if enc.shared_sequence:
            seq_items, seq_cats = seq_items[:1], seq_cats[:1]
        s, n_l = seq_items.shape  # s: 1 (shared) or B
        k = (emb.take(seq_items.ravel(), axis=0) + emb.take(seq_cats.ravel(), axis=0)).reshape(s, n_l, d)
        mask = seq_items != 0  # (s, L)
        wq, bq = self.att_q
        a = wq.shape[1]
        qk = (q[:, None, :] * k).reshape(n * n_l, d) @ self.att_p  # (B·L, a)
        h = qk.reshape(n, n_l, a) + (q @ wq + bq)[:, None, :] + (k.reshape(s * n_l, d) @ self.att_k).reshape(s, n_l, a)
        np.maximum(h, 0.0, out=h)
        w_out, b_out = self.att_out
        logits = np.where(mask, (h.reshape(n * n_l, a) @ w_out).reshape(n, n_l) + b_out, np.float32(-1e9))
        logits -= logits.max(axis=1, keepdims=True)
        w = np.exp(logits)
        w /= w.sum(axis=1, keepdims=True)
        w *= mask  # rows without history pool to zero
        pooled = w @ k[0] if s == 1 else np.einsum("bl,bld->bd", w, k)  # (B, d)
        parts = [e, pooled, q, enc.dense.astype(np.float32, copy=False)]
        if self.seq_mean:
            m = mask[..., None].astype(np.float32)
            mean = (k * m).sum(1) / np.maximum(m.sum(1), 1.0)  # (s, d)
            parts.append(np.broadcast_to(mean, (n, d)))
        x = np.concatenate(parts, axis=1).astype(np.float32, copy=False)
        wide = self.wide.take(enc.sparse.ravel()).reshape(n, n_f).sum(axis=1)
        ctr = self._mlp(x, self.ctr) + wide + np.float32(self.ctr_bias)
        cvr = self._mlp(x, self.cvr) + np.float32(self.cvr_bias)
        return ctr, cvr


class LogReg(nn.Module):
    cvr_logit: torch.Tensor

    def __init__(self, buckets: int, n_sparse: int, n_dense: int) -> None:
        super().__init__()
        self.arch = {"buckets": buckets, "n_sparse": n_sparse, "n_dense": n_dense}
        self.wide = nn.Embedding(buckets, 1, padding_idx=0, sparse=True)
        nn.init.zeros_(self.wide.weight)
        self.lin = nn.Linear(n_dense, 1)
        nn.init.zeros_(self.lin.weight)
        nn.init.constant_(self.lin.bias, -3.5)
        self.register_buffer("cvr_logit", torch.tensor(-2.0))

    def forward(self, sparse, dense, seq_items, seq_cats, t_item, t_cat):  # type: ignore[no-untyped-def]
        ctr = self.wide(sparse).sum(dim=(1, 2)) + self.lin(dense.float()).squeeze(-1)
        return ctr, self.cvr_logit.expand_as(ctr)


class Popularity(nn.Module):
    """Smoothed CTR of the creative in the training window (field 0 of `sparse`)."""

    table: torch.Tensor
    cvr_logit: torch.Tensor

    def __init__(self, buckets: int, n_sparse: int = 0, n_dense: int = 0) -> None:
        super().__init__()
        self.arch = {"buckets": buckets, "n_sparse": n_sparse, "n_dense": n_dense}
        self.register_buffer("table", torch.zeros(buckets))
        self.register_buffer("cvr_logit", torch.tensor(-2.0))

    def fit_counts(self, creative_buckets: np.ndarray, click: np.ndarray, conversion: np.ndarray) -> None:
        n = self.table.shape[0]
        imps = np.bincount(creative_buckets, minlength=n).astype(np.float64)
        clicks = np.bincount(creative_buckets, weights=click, minlength=n)
        prior = clicks.sum() / max(imps.sum(), 1.0)
        prior = min(max(prior, 1e-4), 1 - 1e-4)
        ctr = (clicks + 20 * prior) / (imps + 20)
        self.table.copy_(torch.from_numpy(np.log(ctr / (1 - ctr))).float())
        self.cvr_logit.fill_(_cvr_logit(click, conversion))

    def forward(self, sparse, dense, seq_items, seq_cats, t_item, t_cat):  # type: ignore[no-untyped-def]
        ctr = self.table[sparse[:, 0]]
        return ctr, self.cvr_logit.expand_as(ctr)


def _cvr_logit(click: np.ndarray, conversion: np.ndarray) -> float:
    rate = (float(conversion.sum()) + 1.0) / (float(click.sum()) + 10.0)
    return math.log(rate / (1 - rate))


def build_model(kind: str, arch: dict[str, Any]) -> nn.Module:
    if kind == "din_esmm":
        return DinEsmm(
            arch["buckets"],
            arch["n_sparse"],
            arch["n_dense"],
            dim=arch.get("dim", 16),
            hidden=tuple(arch.get("hidden", (128, 64))),
            att_hidden=arch.get("att_hidden", 16),
            seq_mean=arch.get("seq_mean", False),  # models saved before it existed had none
        )
    if kind == "logreg":
        return LogReg(arch["buckets"], arch["n_sparse"], arch["n_dense"])
    if kind == "popularity":
        return Popularity(arch["buckets"], arch["n_sparse"], arch["n_dense"])
    raise ValueError(ERROR_MODEL_KIND)


# ---------------------------------------------------------------------------------------
# data on the device


def to_tensors(enc: Encoded, plan: DevicePlan) -> Batch:
    arrays = (enc.sparse, enc.dense, enc.seq_items, enc.seq_cats, enc.target_item, enc.target_cat)
    out = []
    for a in arrays:
        t = torch.from_numpy(np.ascontiguousarray(a))
        if plan.device == "cuda":
            # pinned host memory → one asynchronous copy; batches are then sliced on the GPU
            t = t.pin_memory().to("cuda", non_blocking=True)
        out.append(t)
    return tuple(out)  # type: ignore[return-value]


def _batches(data: Batch, idx: torch.Tensor, size: int) -> Iterator[tuple[torch.Tensor, Batch]]:
    for start in range(0, idx.numel(), size):
        b = idx[start : start + size]
        yield b, tuple(t.index_select(0, b) for t in data)  # type: ignore[misc]


# ---------------------------------------------------------------------------------------
# training


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 4
    lr: float = 3e-3
    weight_decay: float = 0.0
    conversion_weight: float = 1.0
    batch_size: int | None = None  # None: the device plan's
    seed: int = 0
    patience: int = 1
    dim: int = 8  # 16 gave the same holdout AUC at half the speed (docs/benchmarks/train.md)
    hidden: tuple[int, ...] = (128, 64)
    att_hidden: int = 16
    seq_mean: bool = True  # the sequence's plain mean (taste vector) next to its attention pooling
    emb_l2: float = 0.0  # L2 on the embedding rows a batch touches (DIN's mini-batch-aware penalty)


class _Optimizer:
    """SparseAdam for the embedding tables (sparse gradients), Adam for the rest."""

    def __init__(self, model: nn.Module, cfg: TrainConfig) -> None:
        sparse = [m.weight for m in model.modules() if isinstance(m, nn.Embedding) and m.sparse]
        ids = {id(p) for p in sparse}
        dense = [p for p in model.parameters() if id(p) not in ids]
        self.opts: list[torch.optim.Optimizer] = []
        if sparse:
            self.opts.append(torch.optim.SparseAdam(sparse, lr=cfg.lr))
        if dense:
            self.opts.append(torch.optim.Adam(dense, lr=cfg.lr, weight_decay=cfg.weight_decay))

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.opts:
            o.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for o in self.opts:
            o.step()


@dataclass
class FitReport:
    epochs_run: int
    best_epoch: int
    samples: int  # training samples processed
    seconds: float  # training time (excluding validation passes)
    samples_per_second: float
    validation_auc: list[float] = field(default_factory=list)


def esmm_loss(ctr: torch.Tensor, cvr: torch.Tensor, click: torch.Tensor, conv: torch.Tensor, w: float) -> torch.Tensor:
    ctr = ctr.float()
    cvr = cvr.float()
    loss_ctr = F.binary_cross_entropy_with_logits(ctr, click)
    log_p = F.logsigmoid(ctr) + F.logsigmoid(cvr)  # log pCTCVR
    log_1mp = torch.log1p(-torch.exp(log_p).clamp(max=1 - 1e-6))
    loss_ctcvr = -(conv * log_p + (1 - conv) * log_1mp).mean()
    return loss_ctr + w * loss_ctcvr


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def fit(
    kind: str,
    spec: FeatureSpec,
    train: Encoded,
    y_click: np.ndarray,
    y_conv: np.ndarray,
    *,
    validation: tuple[Encoded, np.ndarray] | None = None,
    plan: DevicePlan,
    cfg: TrainConfig = TrainConfig(),
    progress: Callable[[str], None] | None = None,
) -> tuple[nn.Module, FitReport]:
    """Train one model; early stopping on validation AUC (best epoch's weights kept)."""
    if kind not in MODEL_KINDS:
        raise ValueError(ERROR_MODEL_KIND)
    g = seed_everything(cfg.seed)
    torch.set_num_threads(plan.threads)
    arch: dict[str, Any] = {"buckets": spec.buckets, "n_sparse": len(spec.sparse), "n_dense": len(spec.dense)}
    if kind == "din_esmm":
        arch.update(dim=cfg.dim, hidden=list(cfg.hidden), att_hidden=cfg.att_hidden, seq_mean=cfg.seq_mean)
    model = build_model(kind, arch)
    if kind == "popularity":
        assert isinstance(model, Popularity)
        model.fit_counts(train.sparse[:, 0], y_click, y_conv)
        return model, FitReport(0, 0, len(train), 0.0, float("nan"))
    if isinstance(model, LogReg):
        model.cvr_logit.fill_(_cvr_logit(y_click, y_conv))
    model.to(plan.device)
    data = to_tensors(train, plan)
    yc = torch.from_numpy(y_click.astype(np.float32))
    yv = torch.from_numpy(y_conv.astype(np.float32))
    if plan.device == "cuda":
        yc = yc.pin_memory().to("cuda", non_blocking=True)
        yv = yv.pin_memory().to("cuda", non_blocking=True)
    opt = _Optimizer(model, cfg)
    size = cfg.batch_size or plan.batch_size
    n = len(train)
    best_auc, best_state, best_epoch, bad = -1.0, None, 0, 0
    report = FitReport(0, 0, 0, 0.0, 0.0)
    for epoch in range(cfg.epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=g)
        if plan.device == "cuda":
            perm = perm.to("cuda")
        for b, batch in _batches(data, perm, size):
            with autocast(plan):
                ctr, cvr = model(*batch)
            loss = esmm_loss(ctr, cvr, yc.index_select(0, b), yv.index_select(0, b), cfg.conversion_weight)
            if cfg.emb_l2 > 0 and isinstance(model, DinEsmm):
                loss = loss + cfg.emb_l2 * model.batch_table.float().pow(2).sum() / b.numel()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if plan.device == "cuda":
            torch.cuda.synchronize()
        report.seconds += time.perf_counter() - t0
        report.samples += n
        report.epochs_run = epoch + 1
        if validation is None:
            best_epoch = epoch + 1
            continue
        p_val, _ = predict_logits(model, validation[0], plan)
        auc = metrics.auc(validation[1], p_val)
        report.validation_auc.append(auc)
        if progress is not None:
            progress(f"{kind} epoch {epoch + 1}/{cfg.epochs}: validation AUC {auc:.4f}")
        if auc > best_auc:
            best_auc, best_state, best_epoch, bad = auc, copy.deepcopy(model.state_dict()), epoch + 1, 0
        else:
            bad += 1
            if bad > cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    report.best_epoch = best_epoch
    report.samples_per_second = report.samples / report.seconds if report.seconds else float("nan")
    model.to("cpu")
    model.eval()
    return model, report


@torch.inference_mode()
def predict_logits(model: nn.Module, enc: Encoded, plan: DevicePlan | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(click logit, log pCTCVR) per example."""
    plan = plan or _CPU_INFERENCE
    was_training = model.training
    if was_training:  # serving modules are loaded in eval mode: no per-call walk over submodules
        model.eval()
    data = to_tensors(enc, plan)
    outs_c, outs_v = [], []
    chunk = 65536
    if len(enc) <= chunk:  # serving: one batch, no re-indexing
        batches: Any = [(None, data)]
    else:
        batches = _batches(data, torch.arange(len(enc), device=plan.device), chunk)
    for _, batch in batches:
        with autocast(plan):
            ctr, cvr = model(*batch)
        ctr = ctr.float()
        outs_c.append(ctr.cpu())
        outs_v.append((F.logsigmoid(ctr) + F.logsigmoid(cvr.float())).cpu())
    if was_training:
        model.train()
    if not outs_c:
        return np.zeros(0), np.zeros(0)
    return torch.cat(outs_c).numpy().astype(np.float64), torch.cat(outs_v).numpy().astype(np.float64)


# ---------------------------------------------------------------------------------------
# calibration (Platt scaling on the validation split)


def platt_fit(logits: np.ndarray, y: np.ndarray, iters: int = 50) -> tuple[float, float]:
    """(a, b) minimising the log loss of σ(a·logit + b): Newton steps on two parameters."""
    x = np.asarray(logits, dtype=np.float64)
    t = np.asarray(y, dtype=np.float64)
    if x.size == 0 or t.min() == t.max():
        return 1.0, 0.0
    a, b = 1.0, 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(a * x + b)))
        g = np.array([np.sum((p - t) * x), np.sum(p - t)])
        w = p * (1 - p) + 1e-12
        h = np.array([[np.sum(w * x * x), np.sum(w * x)], [np.sum(w * x), np.sum(w)]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(h, g)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    return float(a), float(b)


def platt_apply(logits: np.ndarray, ab: tuple[float, float]) -> np.ndarray:
    z = ab[0] * np.asarray(logits, dtype=np.float64) + ab[1]
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    z = np.asarray(x, dtype=np.float64)
    return np.minimum(z, 0.0) - np.log1p(np.exp(-np.abs(z)))


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(q / (1 - q))


# ---------------------------------------------------------------------------------------
# artifacts


@dataclass
class TrainedModel:
    """A model with its feature spec and calibration: what a registry version stores."""

    kind: str
    spec: FeatureSpec
    module: nn.Module
    click_calibration: tuple[float, float] = (1.0, 0.0)
    conversion_calibration: tuple[float, float] = (1.0, 0.0)

    def predict(self, enc: Encoded) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated (p_click, p_conversion per impression), on CPU."""
        return self._calibrated(*predict_logits(self.module, enc))

    def _calibrated(self, click_logit: np.ndarray, log_ctcvr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p_click = platt_apply(click_logit, self.click_calibration)
        p_conv = platt_apply(_logit(np.exp(log_ctcvr)), self.conversion_calibration)
        return p_click, p_conv

    def serving_predictor(self) -> Callable[[Encoded], tuple[np.ndarray, np.ndarray]]:
        """`predict` for a serving process's small batches: DinEsmm through its NumPy
        forward (weights copied now: the module must not train afterwards), other kinds
        through torch."""
        if not isinstance(self.module, DinEsmm):
            return self.predict
        kernel = DinEsmmServing(self.module)

        def predict(enc: Encoded) -> tuple[np.ndarray, np.ndarray]:
            click_logit, cvr_logit = kernel(enc)
            return self._calibrated(click_logit, _log_sigmoid(click_logit) + _log_sigmoid(cvr_logit))

        return predict

    def predict_raw(self, enc: Encoded) -> tuple[np.ndarray, np.ndarray]:
        click_logit, log_ctcvr = predict_logits(self.module, enc)
        return sigmoid(click_logit), np.exp(log_ctcvr)

    def calibrate(self, enc: Encoded, y_click: np.ndarray, y_conv: np.ndarray) -> None:
        click_logit, log_ctcvr = predict_logits(self.module, enc)
        self.click_calibration = platt_fit(click_logit, y_click)
        self.conversion_calibration = platt_fit(_logit(np.exp(log_ctcvr)), y_conv)

    def dumps(self) -> bytes:
        buf = io.BytesIO()
        torch.save(
            {
                "format": 1,
                "kind": self.kind,
                "arch": dict(getattr(self.module, "arch", {})),
                "spec": self.spec.to_json(),
                "state_dict": self.module.state_dict(),
                "click_calibration": list(self.click_calibration),
                "conversion_calibration": list(self.conversion_calibration),
            },
            buf,
        )
        return buf.getvalue()

    @classmethod
    def loads(cls, blob: bytes) -> TrainedModel:
        obj = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        module = build_model(obj["kind"], obj["arch"])
        module.load_state_dict(obj["state_dict"])
        module.eval()
        return cls(
            kind=obj["kind"],
            spec=FeatureSpec.from_json(obj["spec"]),
            module=module,
            click_calibration=(float(obj["click_calibration"][0]), float(obj["click_calibration"][1])),
            conversion_calibration=(float(obj["conversion_calibration"][0]), float(obj["conversion_calibration"][1])),
        )
