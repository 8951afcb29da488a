"""bench/train (`make bench-train`): our click model (DIN target attention + ESMM) vs
deepctr-torch DeepFM, side by side in ONE run on the same generated marketplace, the same
point-in-time examples and the same time split; plus the LR and popularity baselines, the
oracle AUC, calibration before/after, and champion scoring latency for 50 candidates.

Writes docs/benchmarks/train.md and the "Training" section at the end of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "adplatform.settings.test")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.common import machine, now_iso  # noqa: E402
from bench.train_data import generate, history_events, world_catalog  # noqa: E402
from marketplace.world import build_world, preset  # noqa: E402
from ranking import metrics  # noqa: E402
from ranking import nn as rnn  # noqa: E402
from ranking.dataset import ProfileView, build_examples, time_split  # noqa: E402
from ranking.features import Encoded, FeatureSpec, encode, request_features  # noqa: E402
from ranking.selectors import CandidateItem, ScoringRequest  # noqa: E402

LAM = math.log(2) / (14 * 86400)
# what else was tried (kept in the generated page; re-measure when the model changes)
NOTES = [
    'Tried on the same data (2 epochs, test AUC of the click model): embedding width 16 0.7981 (8: 0.7981),',
    'MLP (256, 128) 0.7984, mini-batch-aware L2 on embeddings 1e-4/1e-3 0.7981/0.7979, lr 1e-3 × 4 epochs 0.7970,',
    'batch 1024 0.7981, an added FM pairwise term 0.7968: the holdout AUC is flat at ≈ 0.798 — the remaining',
    "gap to the oracle (0.826) is in what the features can see (per-shopper price sensitivity against the leaf's",
    "median price, the taste group's brand affinity), not in the network. With the shopper-id field every model peaked after epoch 1",
    '(its embeddings overfit in the second pass, the usual one-epoch behaviour of CTR models).',
    'Issue 6 round (2 epochs, seeds 0/1, ours vs DeepFM): dropping the hashed shopper-id field (≈10 training',
    'clicks per shopper) 0.7997/0.7992 vs DeepFM 0.7985/0.7986 — kept, for both models; plus the plain mean of',
    "the sequence (taste vector) next to the attention pooling 0.8002/0.7990 — kept (full 4-epoch bench, seeds",
    '0/1: with it 0.8009/0.8012, without 0.7999/0.8008; DeepFM 0.8004/0.7999). No gain: recency-slot',
    'embeddings in the attention 0.7982, sigmoid (unnormalised) attention weights 0.7977, the context-leaf × top',
    'cross 0.7980, leaf-median-relative price and the sequence mean of it (price-sensitivity proxy) 0.7987, the',
    "whole decayed category-interest vector as 37 dense shares 0.7982 (DeepFM 0.7994). With the true latent",
    "leaf affinity as a feature the model reaches 0.819 (true brand term 0.803, price term 0.799): what is left",
    'is estimating affinity (R² 0.62 from today\'s features; 0.69 adding per-leaf counts of session entries —',
    'category pages and searches, which the profile does not fold yet).',
]


def compact(enc_all: Encoded) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int], int, int]:
    """Per-field dense vocabularies for DeepFM (its best case: no hashing collisions, one
    small table per field)."""
    cols = []
    vocab = []
    for j in range(enc_all.sparse.shape[1]):
        _, inv = np.unique(enc_all.sparse[:, j], return_inverse=True)
        cols.append(inv + 1)
        vocab.append(int(inv.max()) + 2)
    sparse = np.stack(cols, axis=1)
    _, inv_i = np.unique(np.concatenate([[0], enc_all.seq_items.ravel()]), return_inverse=True)
    seq_items = inv_i[1:].reshape(enc_all.seq_items.shape)  # 0 stays padding (smallest value)
    _, inv_c = np.unique(np.concatenate([[0], enc_all.seq_cats.ravel()]), return_inverse=True)
    seq_cats = inv_c[1:].reshape(enc_all.seq_cats.shape)
    return sparse, seq_items, seq_cats, vocab, int(seq_items.max()) + 1, int(seq_cats.max()) + 1


def deepfm_run(
    enc_all: Encoded,
    spec: FeatureSpec,
    y: np.ndarray,
    split,
    *,
    epochs: int,
    batch_size: int,
    device: str,
    seed: int,
) -> dict:
    from deepctr_torch.inputs import DenseFeat, SparseFeat, VarLenSparseFeat
    from deepctr_torch.models import DeepFM

    torch.manual_seed(seed)
    np.random.seed(seed)
    sparse, seq_items, seq_cats, vocab, n_items, n_cats = compact(enc_all)
    d = 16
    cols = [SparseFeat(name, vocabulary_size=vocab[j], embedding_dim=d) for j, name in enumerate(spec.sparse)]
    cols += [DenseFeat(name, 1) for name in spec.dense]
    cols += [
        VarLenSparseFeat(SparseFeat("seq_items", vocabulary_size=n_items, embedding_dim=d), maxlen=spec.seq_len, combiner="mean"),
        VarLenSparseFeat(SparseFeat("seq_cats", vocabulary_size=n_cats, embedding_dim=d), maxlen=spec.seq_len, combiner="mean"),
    ]

    def inputs(idx: np.ndarray) -> dict:
        x = {name: sparse[idx, j] for j, name in enumerate(spec.sparse)}
        x.update({name: enc_all.dense[idx, j] for j, name in enumerate(spec.dense)})
        x["seq_items"] = seq_items[idx]
        x["seq_cats"] = seq_cats[idx]
        return x

    model = DeepFM(cols, cols, task="binary", device=device, seed=seed)
    # the same optimiser and learning rate as ours (deepctr's default Adam lr is 1e-3)
    model.compile(torch.optim.Adam(model.parameters(), lr=3e-3), "binary_crossentropy")
    x_tr, x_va, x_te = inputs(split.train), inputs(split.validation), inputs(split.test)
    best = (-1.0, None, 0)
    seconds = 0.0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.fit(x_tr, y[split.train], batch_size=batch_size, epochs=1, verbose=0)
        seconds += time.perf_counter() - t0
        va = model.predict(x_va, batch_size=8192).ravel()
        auc_va = metrics.auc(y[split.validation], va)
        if auc_va > best[0]:
            best = (auc_va, model.predict(x_te, batch_size=8192).ravel(), epoch + 1)
    p_te = best[1]
    return {
        "auc": metrics.auc(y[split.test], p_te),
        "logloss": metrics.logloss(y[split.test], p_te),
        "samples_per_second": len(split.train) * epochs / seconds,
        "best_epoch": best[2],
        "seconds": seconds,
    }


def ours_run(kind: str, enc_all: Encoded, spec: FeatureSpec, ex, split, *, epochs: int, device: str, seed: int, batch_size: int | None = None, threads: int = 0) -> tuple[dict, rnn.TrainedModel]:
    plan = rnn.device_plan(device, threads=threads)
    tr, va, te = enc_all.take(split.train), enc_all.take(split.validation), enc_all.take(split.test)
    cfg = rnn.TrainConfig(epochs=epochs, seed=seed, batch_size=batch_size)
    module, rep = rnn.fit(kind, spec, tr, ex.click[split.train], ex.conversion[split.train], validation=(va, ex.click[split.validation]), plan=plan, cfg=cfg)
    model = rnn.TrainedModel(kind, spec, module)
    raw, _ = model.predict_raw(te)
    model.calibrate(va, ex.click[split.validation], ex.conversion[split.validation])
    p, pv = model.predict(te)
    y = ex.click[split.test]
    users = [ex.user[i] for i in split.test]
    return {
        "auc": metrics.auc(y, p),
        "gauc": metrics.gauc(y, p, users),
        "logloss": metrics.logloss(y, p),
        "ece_before": metrics.calibration_error(y, raw),
        "ece_after": metrics.calibration_error(y, p),
        "conversion_auc": metrics.auc(ex.conversion[split.test], pv),
        "samples_per_second": rep.samples_per_second,
        "best_epoch": rep.best_epoch,
        "epochs_run": rep.epochs_run,
        "seconds": rep.seconds,
    }, model


def scoring_latency(model: rnn.TrainedModel, creatives: dict[int, CandidateItem], products: dict) -> dict:
    torch.set_num_threads(1)
    items = list(creatives.values())
    cands = [items[i % len(items)] for i in range(50)]
    pids = list(products)[:20]
    prof = ProfileView("U000001", True, {c: 1.0 + i for i, c in enumerate({p.category_path[-1] for p in products.values()})}, {}, tuple(pids), {"mobile": 3}, 40, 0.5, 50.0)
    req = ScoringRequest("U000001", prof, {"page_type": "category", "category_id": cands[0].category_path[-1], "hour": 15}, cands)
    for _ in range(30):
        model.predict(encode(request_features(req, products=products), model.spec))
    times = []
    for _ in range(300):
        t0 = time.perf_counter()
        model.predict(encode(request_features(req, products=products), model.spec))
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"p50_ms": times[len(times) // 2], "p95_ms": times[int(len(times) * 0.95)], "mean_ms": float(np.mean(times))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="test")
    ap.add_argument("--users", type=int, default=1500)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=2048, help="for both models")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads for both models (0: idle cores)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    threads = rnn.cpu_threads(args.threads)

    t0 = time.perf_counter()
    cfg = preset(args.preset, n_users=args.users, days=args.days)
    world = build_world(cfg)
    days = generate(world)
    events, oracle = history_events(world, days)
    creatives, products = world_catalog(world)
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    ex = build_examples(events, creatives=creatives, products=products, lam=LAM, click_window_seconds=3600)
    t_examples = time.perf_counter() - t0
    split = time_split(ex.at)
    spec = FeatureSpec()
    t0 = time.perf_counter()
    enc_all = encode(ex.features, spec)
    t_encode = time.perf_counter() - t0
    y_test = ex.click[split.test]
    oracle_auc = metrics.auc(y_test, np.array([oracle[ex.request_id[i]] for i in split.test]))
    print(f"{len(events)} events, {len(ex)} examples ({len(split.train)}/{len(split.validation)}/{len(split.test)}), CTR {ex.click.mean():.4f}; gen {t_gen:.1f}s examples {t_examples:.1f}s encode {t_encode:.1f}s")
    print(f"oracle test AUC {oracle_auc:.4f}")

    results: dict[str, dict] = {}
    for kind in ("popularity", "logreg"):
        results[kind], _ = ours_run(kind, enc_all, spec, ex, split, epochs=args.epochs, device="cpu", seed=args.seed, batch_size=args.batch_size, threads=threads)
        print(kind, {k: round(v, 4) for k, v in results[kind].items()})
    results["din_esmm"], din = ours_run("din_esmm", enc_all, spec, ex, split, epochs=args.epochs, device="cpu", seed=args.seed, batch_size=args.batch_size, threads=threads)
    print("din_esmm", {k: round(v, 4) for k, v in results["din_esmm"].items()})
    torch.set_num_threads(threads)  # the same intra-op threads as ours
    results["deepfm"] = deepfm_run(enc_all, spec, ex.click, split, epochs=args.epochs, batch_size=args.batch_size, device="cpu", seed=args.seed)
    print("deepfm", {k: round(v, 4) for k, v in results["deepfm"].items()})
    cuda = None
    if torch.cuda.is_available():
        cuda = {
            "din_esmm": ours_run("din_esmm", enc_all, spec, ex, split, epochs=args.epochs, device="cuda", seed=args.seed)[0],
            "deepfm": deepfm_run(enc_all, spec, ex.click, split, epochs=args.epochs, batch_size=16384, device="cuda", seed=args.seed),
        }
    lat = scoring_latency(din, creatives, products)
    print("scoring 50 candidates", {k: round(v, 3) for k, v in lat.items()})
    if not args.no_write:
        args.threads_used = threads
        write_docs(args, len(events), ex, split, oracle_auc, results, lat, cuda)


def write_docs(args, n_events, ex, split, oracle_auc, r, lat, cuda) -> None:
    din, fm = r["din_esmm"], r["deepfm"]
    ratio = din["samples_per_second"] / fm["samples_per_second"]
    gap = oracle_auc - din["auc"]
    load = os.getloadavg()[0]
    lines = [
        "# Training benchmark (`make bench-train`, bench/train.py)",
        "",
        f"Run {now_iso()} on {machine()}; load average at the end {load:.1f} — the box is **shared** by",
        "five engineers, so absolute speeds are noisy; the ratios compare models trained in the same run.",
        "",
        f"Data: generated marketplace (`{args.preset}` preset, {args.users} shoppers, {args.days} days, seed 7) →",
        f"{n_events} log events → {len(ex)} point-in-time impressions (CTR {ex.click.mean():.4f},",
        f"{int(ex.conversion.sum())} conversions), time split train/validation/test = {len(split.train)}/{len(split.validation)}/{len(split.test)}.",
        f"All models: same encoded features, {args.epochs} epochs, batch {args.batch_size}, Adam lr 3e-3, the best epoch on validation, seed {args.seed}, CPU fp32, {args.threads_used} torch thread(s) for both.",
        "",
        "| model | test AUC | GAUC | logloss | ECE before → after calibration | train samples/s |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| oracle (true p_click) | {oracle_auc:.4f} | | | | |",
    ]
    for name, label in (("din_esmm", "**ours: DIN attention + ESMM** (calibrated)"), ("logreg", "logistic regression (calibrated)"), ("popularity", "popularity (creative CTR)")):
        m = r[name]
        sps = f"{m['samples_per_second']:.0f}" if m["samples_per_second"] == m["samples_per_second"] else "—"
        lines.append(f"| {label} | {m['auc']:.4f} | {m['gauc']:.4f} | {m['logloss']:.4f} | {m['ece_before']:.4f} → {m['ece_after']:.4f} | {sps} |")
    lines.append(f"| deepctr-torch DeepFM (uncalibrated) | {fm['auc']:.4f} | | {fm['logloss']:.4f} | | {fm['samples_per_second']:.0f} |")
    lines += [
        "",
        f"- Click model vs oracle: AUC gap **{gap:.4f}** (stated target: ≤ 0.03).",
        f"- Click model vs DeepFM: AUC {din['auc'] - fm['auc']:+.4f} ({din['auc']:.4f} vs {fm['auc']:.4f}; target ≥ DeepFM's); training throughput **{ratio:.2f}×** DeepFM's (target ≥ 2×).",
        f"- Above LR by {din['auc'] - r['logreg']['auc']:+.4f} and popularity by {din['auc'] - r['popularity']['auc']:+.4f} AUC.",
        f"- ESMM conversion head: test AUC of p_conversion (per impression) {din['conversion_auc']:.4f}.",
        f"- Champion scoring, 50 candidates (features + encoding + forward, 1 thread): p50 {lat['p50_ms']:.2f} ms, p95 {lat['p95_ms']:.2f} ms (target < 2 ms).",
        "",
        "DeepFM gets its best case: per-field dense vocabularies (no hashing), the same dense features, and the",
        "behaviour sequence as mean-pooled variable-length fields; it is trained through its own `fit` at the",
        "same batch size and learning rate. Our speed comes from one embedding lookup per batch over its distinct ids, sparse gradients",
        "(SparseAdam touches only the rows in the batch), precomputed tensors sliced per batch (no per-sample",
        "Python, no DataLoader), and intra-op threads only on idle cores. Embedding width: ours 8 (16 gave the",
        "same holdout AUC at about half the speed in a sweep on this data), DeepFM 16 (4 is its default).",
        "",
        *NOTES,
        "",
    ]
    if cuda is None:
        lines.append("CUDA: **pending a GPU host** (none on this machine). The CUDA path (bf16 autocast, pinned-memory upload, batches of 16384) is selected by `--device auto|cuda`.")
    else:
        lines.append(f"CUDA: ours AUC {cuda['din_esmm']['auc']:.4f} at {cuda['din_esmm']['samples_per_second']:.0f} samples/s; DeepFM AUC {cuda['deepfm']['auc']:.4f} at {cuda['deepfm']['samples_per_second']:.0f} samples/s.")
    lines.append("")
    Path(ROOT / "docs" / "benchmarks").mkdir(parents=True, exist_ok=True)
    (ROOT / "docs" / "benchmarks" / "train.md").write_text("\n".join(lines))
    summary = [
        "## Training: click model vs DeepFM (bench/train.py)",
        "",
        f"Same data and split, one run ({now_iso()}, shared box): ours (DIN + ESMM) test AUC {din['auc']:.4f} vs DeepFM {fm['auc']:.4f}",
        f"(oracle {oracle_auc:.4f}, LR {r['logreg']['auc']:.4f}, popularity {r['popularity']['auc']:.4f}); training {ratio:.2f}× DeepFM's samples/s",
        f"({din['samples_per_second']:.0f} vs {fm['samples_per_second']:.0f}); scoring 50 candidates p50 {lat['p50_ms']:.2f} ms. CUDA figures pending a GPU host.",
        "Details: [benchmarks/train.md](benchmarks/train.md).",
        "",
    ]
    bench_md = ROOT / "docs" / "benchmarks.md"
    text = bench_md.read_text()
    marker = "## Training: click model vs DeepFM (bench/train.py)"
    section = "\n".join(summary)
    if marker in text:
        # replace this section only: the sections after it belong to other benches
        start = text.index(marker)
        nxt = text.find("\n## ", start + len(marker))
        tail = "\n" + text[nxt + 1 :] if nxt >= 0 else ""
        text = text[:start] + section + tail
    else:
        text = text.rstrip() + "\n\n" + section
    bench_md.write_text(text)


if __name__ == "__main__":
    main()
