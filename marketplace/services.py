"""Writes of the marketplace: seeding a synthetic world and importing the Taobao dataset,
both through the other apps' services (see marketplace/seeding.py, importers/taobao.py)."""

from __future__ import annotations

from .importers.taobao import TaobaoImportResult, taobao_import
from .importers.taobao import total_bytes as taobao_total_bytes
from .seeding import SeedResult, world_product_inputs, world_seed

__all__ = [
    "SeedResult",
    "TaobaoImportResult",
    "taobao_import",
    "taobao_total_bytes",
    "world_product_inputs",
    "world_seed",
]
