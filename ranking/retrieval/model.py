"""The two-tower retrieval model (torch). Both towers end in a unit vector, so the score
is the cosine the pgvector HNSW indexes serve (`vector_cosine_ops`); training divides it
by a temperature. The id, category and brand tables are shared by the item tower and the
shopper tower's interest bags and sequence, which puts shoppers and items in one space
and lets a sparse shopper generalise over category, brand and text."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as nnf
from torch import nn

from .dataset import AGE_EDGES, DEVICES, GAP_EDGES, PRICE_BUCKETS, SEQ_LEN


@dataclass(frozen=True)
class TowerConfig:
    n_items: int
    n_categories: int
    n_brands: int
    max_path: int
    text_dim: int = 384
    dim: int = 64
    hidden: int = 128
    id_dropout: float = 0.3  # drop item ids in training: forces use of category/brand/text

    def to_json(self) -> dict[str, int | float]:
        return asdict(self)


class ItemTower(nn.Module):
    def __init__(self, cfg: TowerConfig):
        super().__init__()
        d = cfg.dim
        self.cfg = cfg
        self.item = nn.Embedding(cfg.n_items + 1, d, padding_idx=0)
        self.category = nn.Embedding(cfg.n_categories + 1, d, padding_idx=0)
        self.brand = nn.Embedding(cfg.n_brands + 1, d, padding_idx=0)
        self.price = nn.Embedding(PRICE_BUCKETS + 1, d, padding_idx=0)
        self.text = nn.Linear(cfg.text_dim, d)
        self.mlp = nn.Sequential(nn.Linear(5 * d, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, d))
        for emb in (self.item, self.category, self.brand, self.price):
            nn.init.normal_(emb.weight, std=0.05)
            with torch.no_grad():
                emb.weight[0].zero_()

    def raw(self, idx: torch.Tensor, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cheap item representation (sum of shared embeddings) used inside the shopper
        tower's sequence."""
        cats = feats["categories"][idx]
        return self.item(idx) + self.category(cats).sum(-2) + self.brand(feats["brand"][idx])

    def forward(self, idx: torch.Tensor, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = self.item(idx)
        if self.training and self.cfg.id_dropout > 0:
            keep = (torch.rand(ids.shape[:-1], device=ids.device) >= self.cfg.id_dropout).to(ids.dtype)
            ids = ids * keep.unsqueeze(-1)
        cats = self.category(feats["categories"][idx]).sum(-2)
        text = self.text(feats["text"][idx]) * feats["has_text"][idx].unsqueeze(-1)
        x = torch.cat([ids, cats, self.brand(feats["brand"][idx]), self.price(feats["price"][idx]), text], dim=-1)
        return nnf.normalize(self.mlp(x), dim=-1)


class ShopperTower(nn.Module):
    def __init__(self, cfg: TowerConfig, items: ItemTower):
        super().__init__()
        d = cfg.dim
        self.items = items  # shared tables (not a second copy)
        self.kind = nn.Embedding(4, d, padding_idx=0)
        self.age = nn.Embedding(len(AGE_EDGES) + 2, d, padding_idx=0)
        self.position = nn.Parameter(torch.randn(SEQ_LEN, d) * 0.02)
        self.price = nn.Embedding(PRICE_BUCKETS + 1, d)
        self.device = nn.Embedding(len(DEVICES), d)
        self.gap = nn.Embedding(len(GAP_EDGES) + 2, d)
        self.history = nn.Embedding(13, d)
        self.context = nn.Linear(4 * d, d)  # attention query from the non-sequence context
        self.mlp = nn.Sequential(nn.Linear(7 * d, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, d))

    def forward(self, b: dict[str, torch.Tensor], feats: dict[str, torch.Tensor]) -> torch.Tensor:
        it = self.items
        cats = (it.category(b["cat_idx"]) * b["cat_w"].unsqueeze(-1)).sum(-2)
        brands = (it.brand(b["brand_idx"]) * b["brand_w"].unsqueeze(-1)).sum(-2)
        ctx = torch.cat([self.gap(b["gap"]), self.history(b["history"]), cats, brands], dim=-1)
        seq = b["seq_items"]
        mask = seq > 0
        h = it.raw(seq, feats) + self.kind(b["seq_kind"]) + self.age(b["seq_age"]) + self.position
        q = self.context(ctx)
        att = (h * q.unsqueeze(1)).sum(-1) / (h.shape[-1] ** 0.5)
        att = att.masked_fill(~mask, -1e4)
        w = torch.softmax(att, dim=-1) * mask.to(h.dtype)
        attended = (w.unsqueeze(-1) * h).sum(1)
        mean = (h * mask.unsqueeze(-1).to(h.dtype)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1).to(h.dtype)
        x = torch.cat(
            [attended, mean, cats, brands, self.price(b["price"]), self.device(b["device"]), self.gap(b["gap"])], dim=-1
        )
        return nnf.normalize(self.mlp(x), dim=-1)


class TwoTower(nn.Module):
    def __init__(self, cfg: TowerConfig):
        super().__init__()
        self.cfg = cfg
        self.item_tower = ItemTower(cfg)
        self.shopper_tower = ShopperTower(cfg, self.item_tower)
