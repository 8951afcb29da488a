"""Candidate generation for /rank (auto policy): vector retrieval over creative
embeddings with the shopper's vector, contextual candidates (the viewed product, the
page's category, the search query's text vector), the shopper's viewed products and
interest categories, an exploration pool of new creatives (cold start) and popular
fill. Each candidate keeps the sources that brought it (logged, and used by explain)."""

from __future__ import annotations

import random
import threading
from collections.abc import Collection, Iterable
from typing import Any

import numpy as np
from django.conf import settings

from profiles import selectors as profiles

from .state import Structure

SOURCE_INTEREST = "interest_vector"  # ANN with the shopper's embedding
SOURCE_QUERY = "query_vector"  # ANN with the search query's text embedding
SOURCE_CONTEXT_PRODUCT = "context_product"
SOURCE_CONTEXT_CATEGORY = "context_category"
SOURCE_VIEWED = "viewed_product"  # a product (or the leaf of a product) the shopper viewed
SOURCE_INTEREST_CATEGORY = "interest_category"
SOURCE_EXPLORATION = "exploration_pool"
SOURCE_POPULAR = "popular"
SOURCE_REQUESTED = "requested"  # re-ranking mode: the request's candidate list

PER_CONTEXT = 20  # candidates per contextual source
EXPLORATION_POOL = 8
POPULAR_FILL = 20
FILTERED_MAX_IDS = 500  # up to this many eligible creatives, ANN filters by id in the query

_text_model_state: dict[str, Any] = {"loading": False, "ready": False}
_text_lock = threading.Lock()


def query_vector(query: str | None, *, wait: bool = False) -> np.ndarray | None:
    """The query's text vector, but never wait for the text model to load: the first
    request that needs it starts the load in the background and goes without (keyword
    and category candidates still apply); once loaded, vectors are memoised per query.
    Without `wait` (serving on the live clock) a query not memoised yet also goes without
    and is encoded in the background; `wait` (an injected clock: simulations, tests)
    encodes it now, so replays stay deterministic."""
    if not query or not query.strip():
        return None
    if _text_model_state["ready"]:
        return profiles.text_vector(text=query, wait=wait)
    with _text_lock:
        if not _text_model_state["loading"]:
            _text_model_state["loading"] = True
            threading.Thread(target=_warm_text_model, name="delivery-text-model", daemon=True).start()
    return None


def _warm_text_model() -> None:
    try:
        profiles.text_vector(text="warm up")
        _text_model_state["ready"] = True
    except Exception:  # noqa: BLE001 - a missing model leaves query retrieval off, never the request
        _text_model_state["loading"] = False


def warm_text_model(*, wait: bool = False) -> None:
    """Load the text model now (process start, benches, tests)."""
    if wait:
        _warm_text_model()
    else:
        query_vector("warm up")


def _ann(vector: np.ndarray, eligible: Collection[int], k: int, space: str | None = None) -> list[tuple[int, float]]:
    """k nearest eligible creatives. Few eligible: filtered HNSW scan over their ids;
    otherwise one unfiltered query for 1.5k and the filter applied here (an id array of
    thousands in the query costs more than the rows it saves; fetching 3k doubled the
    HNSW query's time in bench/rank, docs/benchmarks/rank.md). A creative space small
    enough to be held in memory is searched there, exactly and filtered (ADR 0059)."""
    exact = profiles.nearest_creatives_exact(vector=vector, k=k, creative_ids=eligible, space=space)
    if exact is not None:
        return exact
    if len(eligible) <= FILTERED_MAX_IDS:
        return profiles.nearest_creatives(vector=vector, k=k, creative_ids=list(eligible), space=space)
    got = profiles.nearest_creatives(vector=vector, k=k + k // 2, space=space)
    return [(cid, d) for cid, d in got if cid in eligible][:k]


def _take(ids: Iterable[int], eligible: Collection[int], n: int) -> list[int]:
    out = []
    for cid in ids:
        if cid in eligible:
            out.append(cid)
            if len(out) >= n:
                break
    return out


def gather(
    structure: Structure,
    eligible: Collection[int],
    *,
    rng: random.Random,
    user_vec: np.ndarray | None,
    user_space: str | None = None,
    query_vec: np.ndarray | None,
    context_product: str | None,
    context_categories: Iterable[str],
    viewed_products: Iterable[str],
    interest_categories: Iterable[str],
) -> tuple[dict[int, set[str]], dict[int, float]]:
    """({creative_id: sources}, {creative_id: cosine distance to the shopper}) within
    `eligible`, at most DELIVERY_MAX_CANDIDATES."""
    limit = settings.DELIVERY_MAX_CANDIDATES
    k = settings.DELIVERY_ANN_K
    found: dict[int, set[str]] = {}
    distance: dict[int, float] = {}

    def add(ids: Iterable[int], source: str) -> None:
        for cid in ids:
            if cid in found:
                found[cid].add(source)
            elif len(found) < limit:
                found[cid] = {source}

    if not eligible:
        return found, distance
    if context_product:
        add(_take(structure.by_product.get(context_product, ()), eligible, PER_CONTEXT), SOURCE_CONTEXT_PRODUCT)
    if user_vec is not None:
        hits = _ann(user_vec, eligible, k, space=user_space)
        distance.update(hits)
        add((cid for cid, _ in hits), SOURCE_INTEREST)
    if query_vec is not None:
        add((cid for cid, _ in _ann(query_vec, eligible, k // 2 or 1)), SOURCE_QUERY)
    for cat in context_categories:
        add(_take(structure.by_category.get(cat, ()), eligible, PER_CONTEXT), SOURCE_CONTEXT_CATEGORY)
    for pid in list(viewed_products)[:5]:
        add(_take(structure.by_product.get(pid, ()), eligible, 3), SOURCE_VIEWED)
        product = structure.products.get(pid)
        if product and product.category_path:
            add(_take(structure.by_category.get(product.category_path[-1], ()), eligible, 5), SOURCE_VIEWED)
    for cat in interest_categories:
        add(_take(structure.by_category.get(cat, ()), eligible, 10), SOURCE_INTEREST_CATEGORY)
    new = structure.new_ids
    if new:
        # rejection sampling: drawing from all eligible new ids would scan thousands per request
        picks: list[int] = []
        for _ in range(4 * EXPLORATION_POOL):
            cid = new[rng.randrange(len(new))]
            if cid in eligible and cid not in picks:
                picks.append(cid)
                if len(picks) >= EXPLORATION_POOL:
                    break
        add(picks, SOURCE_EXPLORATION)
    add(_take(structure.popular, eligible, POPULAR_FILL), SOURCE_POPULAR)
    return found, distance
