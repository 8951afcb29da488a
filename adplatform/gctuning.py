"""Garbage-collector settings for long-running server processes (web, projection consumer).

A request that parses a 500-event batch allocates tens of thousands of small objects; with
CPython's default thresholds that triggers collections which re-scan every object Django
and our modules created at start-up. Freezing the start-up heap (it lives for the whole
process) and raising the first-generation threshold cut ~7 ms off each batch of 500
(measured in-process, docs/benchmarks.md)."""

from __future__ import annotations

import gc

FIRST_GENERATION_THRESHOLD = 50_000


def tune_gc_for_server() -> None:
    """Call once after start-up imports (not before forking workers that import more)."""
    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(FIRST_GENERATION_THRESHOLD, second, third)
