"""Training and inference of the two-tower model: in-batch softmax with the sampling-bias
(logQ) correction and a temperature, seeded and reproducible on CPU; `device` auto|cpu|cuda
(bf16 autocast and pinned host memory on CUDA). Artifacts are bytes (torch.save of the
weights, the config and the vocabulary) so any host can load them."""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as nnf

from .dataset import FEATURE_FIELDS, CatalogItem, ItemFeatures, RetrievalDataset, ShopperFeatures, Vocab
from .model import TowerConfig, TwoTower

logger = logging.getLogger(__name__)

ERROR_DEVICE = "device must be one of: auto, cpu, cuda."
ERROR_NO_CUDA = "device 'cuda' was asked for but CUDA is not available."
ERROR_NO_EXAMPLES = "No training examples before the split: nothing to train on."


@dataclass(frozen=True)
class TrainConfig:
    dim: int = 64
    hidden: int = 128
    epochs: int = 8
    batch_size: int = 512
    lr: float = 3e-3
    weight_decay: float = 1e-5
    temperature: float = 0.07
    id_dropout: float = 0.3
    seed: int = 0
    # CPU threads while training. One by default: on a small shared box intra-op threads
    # contend with the web and worker processes (measured: 0.12 s/step with 1 thread vs
    # 1.4 s/step with 2 under load); None leaves torch's setting alone.
    cpu_threads: int | None = 1


@dataclass
class TrainedModel:
    model: TwoTower
    vocab: Vocab
    catalog: dict[str, CatalogItem]
    items: ItemFeatures
    train: TrainConfig
    samples_per_second: float
    seconds: float
    device: str
    losses: list[float]


def resolve_device(device: str) -> torch.device:
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(ERROR_DEVICE)
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(ERROR_NO_CUDA)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _item_tensors(items: ItemFeatures, device: torch.device) -> dict[str, torch.Tensor]:
    return {
        "categories": torch.from_numpy(items.categories).to(device),
        "brand": torch.from_numpy(items.brand).to(device),
        "price": torch.from_numpy(items.price).to(device),
        "text": torch.from_numpy(items.text).to(device),
        "has_text": torch.from_numpy(items.has_text).to(device),
    }


def _host_tensors(f: ShopperFeatures, pin: bool) -> dict[str, torch.Tensor]:
    out = {name: torch.from_numpy(np.ascontiguousarray(getattr(f, name))) for name in FEATURE_FIELDS}
    return {k: v.pin_memory() for k, v in out.items()} if pin else out


def _batch(host: dict[str, torch.Tensor], idx: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v[idx].to(device, non_blocking=True) for k, v in host.items()}


def two_tower_fit(
    data: RetrievalDataset,
    *,
    catalog: Mapping[str, CatalogItem],
    config: TrainConfig | None = None,
    device: str = "auto",
    progress: Callable[[int, float], None] | None = None,
) -> TrainedModel:
    """In-batch negatives: each example's positive is its own target; the other targets
    in the batch are its negatives, with logit cos/τ − log q(item) (q = the item's share
    of training targets, the probability it appears as an in-batch negative), and repeats
    of the positive item masked out."""
    cfg = config or TrainConfig()
    if len(data.train_targets) == 0:
        raise ValueError(ERROR_NO_EXAMPLES)
    dev = resolve_device(device)
    previous = torch.get_num_threads()
    if dev.type == "cpu" and cfg.cpu_threads:
        torch.set_num_threads(cfg.cpu_threads)
    try:
        return _fit(data, catalog=catalog, cfg=cfg, dev=dev, progress=progress)
    finally:
        torch.set_num_threads(previous)


def _fit(
    data: RetrievalDataset,
    *,
    catalog: Mapping[str, CatalogItem],
    cfg: TrainConfig,
    dev: torch.device,
    progress: Callable[[int, float], None] | None,
) -> TrainedModel:
    n = len(data.train_targets)
    cuda = dev.type == "cuda"
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    tcfg = TowerConfig(
        n_items=len(data.vocab.items),
        n_categories=len(data.vocab.categories),
        n_brands=len(data.vocab.brands),
        max_path=data.vocab.max_path,
        text_dim=int(data.items.text.shape[1]),
        dim=cfg.dim,
        hidden=cfg.hidden,
        id_dropout=cfg.id_dropout,
    )
    model = TwoTower(tcfg).to(dev)
    feats = _item_tensors(data.items, dev)
    host = _host_tensors(data.train_features, pin=cuda)
    targets = torch.from_numpy(data.train_targets)
    counts = np.bincount(data.train_targets, minlength=len(data.vocab.items) + 1).astype(np.float64)
    log_q = torch.from_numpy(np.log(np.maximum(counts, 1.0) / n)).float().to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, math.ceil(n / cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15
    )
    losses: list[float] = []
    started = time.perf_counter()
    model.train()
    for epoch in range(cfg.epochs):
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * cfg.batch_size : (s + 1) * cfg.batch_size]
            if len(idx) < 2:
                continue
            b = _batch(host, idx, dev)
            tgt = targets[idx].to(dev, non_blocking=True)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=cuda):
                u = model.shopper_tower(b, feats)
                v = model.item_tower(tgt, feats)
            logits = (u.float() @ v.float().T) / cfg.temperature - log_q[tgt].unsqueeze(0)
            same = tgt.unsqueeze(0) == tgt.unsqueeze(1)
            eye = torch.eye(len(tgt), dtype=torch.bool, device=dev)
            logits = logits.masked_fill(same & ~eye, -1e4)
            loss = nnf.cross_entropy(logits, torch.arange(len(tgt), device=dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / n)
        if progress is not None:
            progress(epoch + 1, losses[-1])
        logger.info("retrieval two-tower epoch %d/%d loss %.4f", epoch + 1, cfg.epochs, losses[-1])
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    model.eval()
    return TrainedModel(
        model=model,
        vocab=data.vocab,
        catalog=dict(catalog),
        items=data.items,
        train=cfg,
        samples_per_second=n * cfg.epochs / seconds if seconds > 0 else float("inf"),
        seconds=seconds,
        device=dev.type,
        losses=losses,
    )


@torch.no_grad()
def item_vectors(tm: TrainedModel, *, batch: int = 4096) -> np.ndarray:
    """(n_items, dim) unit vectors in vocab order (row i = vocab.items[i])."""
    model = tm.model
    dev = next(model.parameters()).device
    feats = _item_tensors(tm.items, dev)
    out = []
    n = len(tm.vocab.items)
    for start in range(1, n + 1, batch):
        idx = torch.arange(start, min(n + 1, start + batch), device=dev)
        out.append(model.item_tower(idx, feats).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, tm.model.cfg.dim), dtype=np.float32)


@torch.no_grad()
def shopper_vectors(tm: TrainedModel, features: ShopperFeatures, *, batch: int = 4096) -> np.ndarray:
    model = tm.model
    dev = next(model.parameters()).device
    feats = _item_tensors(tm.items, dev)
    host = _host_tensors(features, pin=False)
    out = []
    for start in range(0, len(features), batch):
        idx = torch.arange(start, min(len(features), start + batch))
        out.append(model.shopper_tower(_batch(host, idx, dev), feats).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, tm.model.cfg.dim), dtype=np.float32)


def artifact_dump(tm: TrainedModel) -> bytes:
    """Weights (CPU), tower config, vocabulary, catalogue and item features: enough to run
    the shopper tower on another host (user-vector refresh between retrains)."""
    buf = io.BytesIO()
    torch.save(
        {
            "format": "adplatform.retrieval.two_tower/1",
            "tower": tm.model.cfg.to_json(),
            "train": tm.train.__dict__,
            "state": {k: v.detach().cpu() for k, v in tm.model.state_dict().items()},
            "vocab": tm.vocab.to_json(),
            "catalog": {p: [list(c.category_path), c.brand, c.price] for p, c in tm.catalog.items()},
            "items": {k: getattr(tm.items, k) for k in ("categories", "brand", "price", "has_text")},
            "text": tm.items.text.astype(np.float16),  # half the bytes; MiniLM cosines survive it
        },
        buf,
    )
    return buf.getvalue()


def artifact_load(blob: bytes, *, device: str = "cpu") -> TrainedModel:
    d: dict[str, Any] = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=False)
    dev = resolve_device(device)
    model = TwoTower(TowerConfig(**d["tower"]))
    model.load_state_dict(d["state"])
    model.to(dev).eval()
    catalog = {p: CatalogItem(p, tuple(v[0]), v[1], v[2]) for p, v in d["catalog"].items()}
    return TrainedModel(
        model=model,
        vocab=Vocab.from_json(d["vocab"]),
        catalog=catalog,
        items=ItemFeatures(text=np.asarray(d["text"], dtype=np.float32), **d["items"]),
        train=TrainConfig(**d["train"]),
        samples_per_second=0.0,
        seconds=0.0,
        device=dev.type,
        losses=[],
    )
