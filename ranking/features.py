"""The one feature function of the click/conversion models, shared by training and serving.

`request_feature_parts(request, products=)` turns a ScoringRequest (profile snapshot +
context + candidates) into JSON-serialisable features: raw values, no hashing, factored
into the part every candidate shares and one dict per candidate. Serving logs exactly
these (`AdDecisionMade.features_shared` once, the candidates' in columns);
training reads the rows back from the log (or rebuilds them with `request_features` as of
the impression for history without a decision). `encode(rows, spec)` / `encode_parts`
turn them into the numpy arrays the models take (stable hashing into buckets), vectorised
per field so no model-specific work happens per example.

Pure: no Django, no torch.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, Protocol

import numpy as np

from .selectors import CandidateItem, ScoringRequest

FEATURE_VERSION = 1
SEQ_LEN = 20  # the profile keeps the 20 newest products (profiles.folding.MAX_RECENT_PRODUCTS)
PAGE_TYPES = ("home", "category", "product", "search", "cart")

# Categorical fields: each value is hashed into one shared bucket space.
SPARSE_FIELDS = (
    "creative",
    "campaign",
    "advertiser",
    "product",
    "cat",
    "top",
    "brand",
    "page_type",
    "placement",
    "device",
    "hour",
    "position",
    "ctx_match",
    # no "user" id: ~10 training clicks per shopper make its embedding noise that both click
    # models fit (test AUC +0.001..0.002 without it, ours and DeepFM alike); the shopper is
    # seen through the behaviour features and the sequence. Rows still carry "user".
    "cat_x_page",
    "price_band",
)
DENSE_FIELDS = (
    "price_log",
    "price_rel",
    "has_price_ref",
    "int_cat",
    "int_top",
    "int_brand",
    "share_cat",
    "share_top",
    "share_brand",
    "seq_cat_hits",
    "seq_top_hits",
    "freq_log",
    "recency",
    "known",
)


class ProductFactsLike(Protocol):
    @property
    def category_path(self) -> tuple[str, ...]: ...

    @property
    def brand(self) -> str: ...

    @property
    def price(self) -> float: ...


@dataclass(frozen=True)
class FeatureSpec:
    """How feature dicts become arrays; stored with every model version."""

    version: int = FEATURE_VERSION
    buckets: int = 1 << 17
    seq_len: int = SEQ_LEN
    sparse: tuple[str, ...] = SPARSE_FIELDS
    dense: tuple[str, ...] = DENSE_FIELDS

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["sparse"] = list(self.sparse)
        d["dense"] = list(self.dense)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FeatureSpec:
        return cls(
            version=int(d["version"]),
            buckets=int(d["buckets"]),
            seq_len=int(d["seq_len"]),
            sparse=tuple(d["sparse"]),
            dense=tuple(d["dense"]),
        )


def _leaf(path: Sequence[str]) -> str:
    return path[-1] if path else ""


def _top(path: Sequence[str]) -> str:
    return path[0] if path else ""


def _ctx_matches(
    context: Mapping[str, Any], items: Sequence[CandidateItem], leaves: Sequence[str], tops: Sequence[str]
) -> list[str]:
    """Per candidate: "3" same product, "2" same leaf category, "1" same top category, "0"
    none/unknown."""
    ctx_pid = context.get("product_id")
    ctx_cat = context.get("category_id")
    ctx_top = context.get("category_top")
    out = []
    for item, leaf, top in zip(items, leaves, tops, strict=True):
        if item.product_id and ctx_pid == item.product_id:
            out.append("3")
        elif not ctx_cat or not item.category_path:
            out.append("0")
        elif ctx_cat == leaf:
            out.append("2")
        elif ctx_cat in item.category_path or (ctx_top and ctx_top == top):
            out.append("1")
        else:
            out.append("0")
    return out


def _price_band(price: float | None) -> str:
    if price is None or price <= 0:
        return ""
    return str(int(math.floor(math.log2(price))))


@dataclass(frozen=True)
class RequestFeatures:
    """One request's features, factored: `shared` holds the shopper's and the context's
    (the same for every candidate), `columns` the candidates' own, one list per name with
    an entry per candidate; row i is `{**shared, **{name: column[i]}}`. Serving encodes
    and logs the columns as they are (a decision logs the shared dict once); training
    reads whole rows."""

    shared: dict[str, Any]
    columns: dict[str, list[Any]]
    n: int
    items: Sequence[CandidateItem] = ()  # the candidates (serving): their static codes are memoised

    def rows(self) -> list[dict[str, Any]]:
        return [{**self.shared, **{name: col[i] for name, col in self.columns.items()}} for i in range(self.n)]


# a candidate's request-independent features, in this order
STATIC_FIELDS = ("creative", "campaign", "advertiser", "product", "cat", "top", "brand", "price_band", "price_log")
_STATIC_MAX = 100_000
# memoised per item object (serving scores the same creatives over and over; a reloaded
# creative is a new object): id(item) → (item, value), the item kept so that its id stays
# its own while the entry lives
_ItemMemo = dict[int, tuple[CandidateItem, tuple[Any, ...]]]
_static_cache: _ItemMemo = {}
_static_codes: dict[tuple[int, tuple[str, ...]], _ItemMemo] = {}


def _per_item(memo: _ItemMemo, item: CandidateItem, make: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...]:
    entry = memo.get(id(item))
    if entry is None or entry[0] is not item:
        if len(memo) >= _STATIC_MAX:
            memo.clear()
        entry = memo[id(item)] = (item, make())
    return entry[1]


def _item_static(item: CandidateItem) -> tuple[Any, ...]:
    """STATIC_FIELDS of a candidate."""
    return _per_item(_static_cache, item, lambda: _static_of(item))


def _static_of(item: CandidateItem) -> tuple[Any, ...]:
    path = item.category_path
    price = item.price
    return (
        str(item.creative_id),
        str(item.campaign_id),
        str(item.advertiser_id),
        item.product_id or "",
        _leaf(path),
        _top(path),
        item.brand or "",
        _price_band(price),
        math.log1p(price) if price is not None and price > 0 else 0.0,
    )


def request_feature_parts(
    request: ScoringRequest, *, products: Mapping[str, ProductFactsLike] | None = None
) -> RequestFeatures:
    """The features of every candidate (same order). `products` resolves the shopper's
    recent product ids to their categories for the behaviour sequence (missing ids keep
    the id only)."""
    products = products or {}
    ctx = request.context
    profile: Any = request.profile  # ProfileSnapshot, or anything with its fields
    personal = profile is not None and getattr(profile, "consent", True)
    cats: Mapping[str, float] = profile.categories if personal else {}
    brands: Mapping[str, float] = profile.brands if personal else {}
    recent: Sequence[str] = tuple(profile.recent_products[:SEQ_LEN]) if personal else ()
    seq_cats = []
    seq_tops = []
    for pid in recent:
        facts = products.get(pid)
        path = facts.category_path if facts is not None else ()
        seq_cats.append(_leaf(path))
        seq_tops.append(_top(path))
    cat_hits = Counter(c for c in seq_cats if c)
    top_hits = Counter(t for t in seq_tops if t)
    max_cat = max(cats.values(), default=0.0) or 1.0
    max_brand = max(brands.values(), default=0.0) or 1.0
    mean_price = getattr(profile, "mean_price", None) if personal else None
    devices = profile.devices if personal else {}
    device = ctx.get("device") or (next(iter(devices), "") if devices else "")
    page_type = str(ctx.get("page_type") or "")
    hour = ctx.get("hour")
    position = ctx.get("position") or 1
    frequency = float(profile.frequency) if personal else 0.0
    recency = profile.recency_days if personal and profile.recency_days is not None else 30.0
    user = request.user_id if personal else ""
    shared = {
        "page_type": page_type,
        "placement": str(ctx.get("placement") or ""),
        "device": str(device),
        "hour": "" if hour is None else str(int(hour)),
        "position": str(int(position)),
        "user": user,
        "freq_log": math.log1p(frequency),
        "recency": min(float(recency), 30.0) / 30.0,
        "known": 1.0 if personal and frequency > 0 else 0.0,
        "seq_products": list(recent),
        "seq_cats": seq_cats,
    }
    items = request.candidates
    columns: dict[str, list[Any]] = (
        dict(zip(STATIC_FIELDS, map(list, zip(*map(_item_static, items), strict=True)), strict=True))
        if items
        else {name: [] for name in STATIC_FIELDS}
    )
    leaves, tops = columns["cat"], columns["top"]
    c_cat = [cats.get(leaf, 0.0) if leaf else 0.0 for leaf in leaves]
    c_top = [cats.get(top, 0.0) if top else 0.0 for top in tops]
    c_brand = [brands.get(item.brand, 0.0) if item.brand else 0.0 for item in items]
    ref = mean_price if mean_price is not None and mean_price > 0 else None
    prices = [item.price if ref is not None and item.price is not None and item.price > 0 else None for item in items]
    columns["ctx_match"] = _ctx_matches(ctx, items, leaves, tops)
    columns["cat_x_page"] = [f"{leaf}|{page_type}" for leaf in leaves]
    columns["price_rel"] = [math.log(p / ref) if p is not None else 0.0 for p in prices]  # type: ignore[operator]
    columns["has_price_ref"] = [0.0 if p is None else 1.0 for p in prices]
    columns["int_cat"] = [math.log1p(x) for x in c_cat]
    columns["int_top"] = [math.log1p(x) for x in c_top]
    columns["int_brand"] = [math.log1p(x) for x in c_brand]
    columns["share_cat"] = [x / max_cat for x in c_cat]
    columns["share_top"] = [x / max_cat for x in c_top]
    columns["share_brand"] = [x / max_brand for x in c_brand]
    columns["seq_cat_hits"] = [cat_hits[leaf] / SEQ_LEN if leaf else 0.0 for leaf in leaves]
    columns["seq_top_hits"] = [top_hits[top] / SEQ_LEN if top else 0.0 for top in tops]
    return RequestFeatures(shared, columns, len(items), items)


def request_features(
    request: ScoringRequest, *, products: Mapping[str, ProductFactsLike] | None = None
) -> list[dict[str, Any]]:
    """One feature dict per candidate (same order): `request_feature_parts`' rows."""
    return request_feature_parts(request, products=products).rows()


# ---------------------------------------------------------------------------------------
# encoding


class _Hasher:
    """Stable bucket ids (crc32 of "field=value"), memoised: ids repeat a lot."""

    def __init__(self, buckets: int) -> None:
        self.buckets = buckets
        self.memo: dict[str, int] = {}

    def __call__(self, key: str) -> int:
        v = self.memo.get(key)
        if v is None:
            # bucket 0 is reserved for padding / missing values
            v = 1 + zlib.crc32(key.encode()) % (self.buckets - 1)
            if len(self.memo) < 2_000_000:
                self.memo[key] = v
        return v


_hashers: dict[int, _Hasher] = {}


def hasher(buckets: int) -> _Hasher:
    h = _hashers.get(buckets)
    if h is None:
        h = _hashers[buckets] = _Hasher(buckets)
    return h


@dataclass
class Encoded:
    """Arrays for n examples: sparse (n, F) int64, dense (n, D) float32, seq_items and
    seq_cats (n, seq_len) int64 (0 = padding), target_item / target_cat (n,) int64.
    `shared_sequence`: every row carries the same sequence (one shopper's request)."""

    sparse: np.ndarray
    dense: np.ndarray
    seq_items: np.ndarray
    seq_cats: np.ndarray
    target_item: np.ndarray
    target_cat: np.ndarray
    shared_sequence: bool = False

    def __len__(self) -> int:
        return int(self.sparse.shape[0])

    def take(self, idx: np.ndarray) -> Encoded:
        return Encoded(
            self.sparse[idx],
            self.dense[idx],
            self.seq_items[idx],
            self.seq_cats[idx],
            self.target_item[idx],
            self.target_cat[idx],
        )


def encode(rows: Sequence[Mapping[str, Any]], spec: FeatureSpec) -> Encoded:
    """Arrays for feature rows (training: every row whole)."""
    names = {*spec.sparse, *spec.dense, "seq_products", "seq_cats", "product", "cat"}
    return encode_parts(RequestFeatures({}, {name: [row.get(name) for row in rows] for name in names}, len(rows)), spec)


def encode_parts(parts: RequestFeatures, spec: FeatureSpec) -> Encoded:
    """Arrays for factored features (serving): a shared field is hashed once for the whole
    column, the shared behaviour sequence encoded once for every row. Equal to
    `encode(parts.rows(), spec)`."""
    shared, columns, n = parts.shared, parts.columns, parts.n
    h = hasher(spec.buckets)
    missing: list[Any] = [None] * n

    def code(prefix: str, v: Any) -> int:
        return h(prefix + str(v)) if v is not None and v != "" else 0

    sparse = np.zeros((n, len(spec.sparse)), dtype=np.int64)
    static = tuple(name for name in spec.sparse if name in STATIC_FIELDS and name not in shared)
    targets: np.ndarray | None = None
    if parts.items and static:
        # the candidates' static fields and their target product/category codes, memoised
        # per item and spec
        memo = _static_codes.setdefault((spec.buckets, static), {})
        static_columns = [columns[name] for name in (*static, "product", "cat")]
        prefixes = [*(name + "=" for name in static), "product=", "cat="]

        def codes_of(i: int) -> tuple[int, ...]:
            return tuple(map(code, prefixes, (col[i] for col in static_columns)))

        rows = [_per_item(memo, item, partial(codes_of, i)) for i, item in enumerate(parts.items)]
        block = np.array(rows, dtype=np.int64).reshape(n, len(prefixes))
        sparse[:, [spec.sparse.index(name) for name in static]] = block[:, : len(static)]
        targets = block[:, len(static) :]
    else:
        static = ()
    for j, name in enumerate(spec.sparse):
        prefix = name + "="
        if name in static:
            continue
        if name in shared:
            sparse[:, j] = code(prefix, shared[name])
            continue
        values = columns.get(name, missing)
        # hash each distinct value once (ids repeat a lot)
        codes = {v: code(prefix, v) for v in set(values)}
        sparse[:, j] = [codes[v] for v in values]
    dense = np.zeros((n, len(spec.dense)), dtype=np.float32)
    for j, name in enumerate(spec.dense):
        if name in shared:
            dense[:, j] = float(shared[name] or 0.0)
        else:
            dense[:, j] = [float(v or 0.0) for v in columns.get(name, missing)]
    seq_len = spec.seq_len
    seq_items = np.zeros((n, seq_len), dtype=np.int64)
    seq_cats = np.zeros((n, seq_len), dtype=np.int64)
    # the same product/category codes are used for targets and the sequence
    pcode: dict[str, int] = {"": 0}
    ccode: dict[str, int] = {"": 0}

    def sequence(prods: Sequence[str], cats: Sequence[str], out_items: np.ndarray, out_cats: np.ndarray) -> None:
        m = min(len(prods), seq_len)
        for p in prods[:m]:
            if p not in pcode:
                pcode[p] = h("product=" + p)
        cats = cats[:m]
        for c in cats:
            if c not in ccode:
                ccode[c] = h("cat=" + c)
        out_items[..., :m] = [pcode[p] for p in prods[:m]]
        out_cats[..., : len(cats)] = [ccode[c] for c in cats]

    one_sequence = "seq_products" in shared  # every row the same (Encoded.shared_sequence)
    if one_sequence:
        if shared["seq_products"] and n:
            sequence(shared["seq_products"], shared.get("seq_cats") or (), seq_items, seq_cats)
    else:
        done: dict[int, int] = {}  # id(sequence list) → first row encoded with it (rows share it)
        for i, (prods, cats) in enumerate(
            zip(columns.get("seq_products", missing), columns.get("seq_cats", missing), strict=True)
        ):
            if prods:
                first = done.get(id(prods))
                if first is not None:
                    seq_items[i] = seq_items[first]
                    seq_cats[i] = seq_cats[first]
                else:
                    done[id(prods)] = i
                    sequence(prods, cats or (), seq_items[i], seq_cats[i])
    if targets is not None:
        return Encoded(sparse, dense, seq_items, seq_cats, targets[:, 0].copy(), targets[:, 1].copy(), one_sequence)
    for p in set(columns.get("product", missing)).difference(pcode):
        if p:
            pcode[p] = h("product=" + p)
    for c in set(columns.get("cat", missing)).difference(ccode):
        if c:
            ccode[c] = h("cat=" + c)
    target_item = np.asarray([pcode[p or ""] for p in columns.get("product", missing)], dtype=np.int64)
    target_cat = np.asarray([ccode[c or ""] for c in columns.get("cat", missing)], dtype=np.int64)
    return Encoded(sparse, dense, seq_items, seq_cats, target_item.reshape(n), target_cat.reshape(n), one_sequence)
