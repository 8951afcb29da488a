"""Taobao import rate: generate a dataset in the Tianchi-56 layout (deterministic; default
2 000 ad groups, 1 000 000 raw_sample rows, 100 000 behaviour rows) and time
`marketplace.services.taobao_import` per file (rows/s) and its peak memory.

    .venv/bin/python bench/taobao_import.py [--rows 1000000] [--adgroups 2000] [--behaviour 100000]

Uses the worktree's database (embedded Postgres under var/ unless DATABASE_URL is set);
the ids are new on each run unless the same dataset was imported before (then the run
measures the duplicate path: pass --fresh to generate new user ids).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "adplatform.settings.local")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from marketplace.importers.taobao import AD_FEATURE, BEHAVIOR_LOG, HEADERS, RAW_SAMPLE  # noqa: E402
from marketplace.services import taobao_import  # noqa: E402


def generate(root: Path, *, adgroups: int, rows: int, behaviour: int, salt: int) -> None:
    rng = random.Random(salt)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / AD_FEATURE, "w") as f:
        f.write(",".join(HEADERS[AD_FEATURE]) + "\n")
        for a in range(adgroups):
            f.write(f"{100000 + a},{rng.randint(1, 800)},{5000 + a // 4},{900 + a // 8},{rng.randint(1, 9999)},")
            f.write(f"{rng.uniform(5, 500):.2f}\n")
    t0 = 1494000000
    with open(root / RAW_SAMPLE, "w") as f:
        f.write(",".join(HEADERS[RAW_SAMPLE]) + "\n")
        for i in range(rows):
            clk = 1 if rng.random() < 0.05 else 0
            pid = "430548_1007" if rng.random() < 0.7 else "430539_1007"
            f.write(
                f"{salt * 10_000_000 + i % 200_000},{t0 + i},{100000 + rng.randrange(adgroups)},{pid},{1 - clk},{clk}\n"
            )
    with open(root / BEHAVIOR_LOG, "w") as f:
        f.write(",".join(HEADERS[BEHAVIOR_LOG]) + "\n")
        tags = ("pv",) * 90 + ("cart",) * 4 + ("fav",) * 3 + ("buy",) * 3
        for i in range(behaviour):
            f.write(
                f"{salt * 10_000_000 + i % 50_000},{t0 + i},{rng.choice(tags)},{rng.randint(1, 800)},{rng.randint(1, 9999)}\n"
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--adgroups", type=int, default=2000)
    ap.add_argument("--behaviour", type=int, default=100_000)
    ap.add_argument("--fresh", type=int, default=1, help="salt for user ids (new salt → new events)")
    args = ap.parse_args()
    root = Path(settings.VAR_DIR) / "bench" / f"taobao-{args.rows}-{args.fresh}"
    t = time.monotonic()
    generate(root, adgroups=args.adgroups, rows=args.rows, behaviour=args.behaviour, salt=args.fresh)
    print(f"generated {root} in {time.monotonic() - t:.1f}s")
    sizes = [(root / n).stat().st_size for n in (AD_FEATURE, RAW_SAMPLE, BEHAVIOR_LOG)]
    marks: list[float] = []
    seen = [0]
    started = time.monotonic()

    def progress(n: int) -> None:
        seen[0] += n
        while len(marks) < 3 and seen[0] >= sum(sizes[: len(marks) + 1]):
            marks.append(time.monotonic())

    result = taobao_import(path=root, state_dir=root / "state", restart=True, progress=progress)
    end = time.monotonic()
    marks += [end] * (3 - len(marks))
    ads_s, raw_s, beh_s = marks[0] - started, marks[1] - marks[0], marks[2] - marks[1]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(result)
    print(
        f"ad_feature: {args.adgroups} rows in {ads_s:.1f}s ({args.adgroups / ads_s:.0f} rows/s; "
        f"{result.advertisers} advertisers, {result.campaigns} campaigns, {result.creatives} creatives)"
    )
    print(f"raw_sample: {args.rows} rows in {raw_s:.1f}s ({args.rows / raw_s:.0f} rows/s)")
    print(f"behavior_log: {args.behaviour} rows in {beh_s:.1f}s ({args.behaviour / beh_s:.0f} rows/s)")
    print(f"total {end - started:.1f}s, peak RSS {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
