"""Bulk import of behaviour events from files, through the same validation and
idempotency as the API (`events_ingest`). Resumable: the byte offset of the last
committed batch is saved next to the data, so a re-run skips what was done; even
without it, event_id idempotency means nothing is stored twice."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .services import Rejection, events_ingest

ERROR_LINE_NOT_JSON = "Line is not valid JSON."


@dataclass
class ImportStats:
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped_bytes: int = 0
    rejections: list[tuple[int, dict[str, list[str]]]] = field(default_factory=list)


def _state_path(path: Path, state_dir: Path) -> Path:
    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:24]
    return state_dir / f"import-{key}.json"


def _batches(fh: Any, start: int, batch_size: int) -> Iterator[tuple[list[tuple[int, Any]], int]]:
    """Yield ([(line_no, parsed | None)], end_offset) per batch of non-blank lines."""
    fh.seek(start)
    line_no = 0
    batch: list[tuple[int, Any]] = []
    while True:
        raw = fh.readline()
        if not raw:
            break
        line_no += 1
        if not raw.strip():
            continue
        try:
            batch.append((line_no, orjson.loads(raw)))
        except orjson.JSONDecodeError:
            batch.append((line_no, None))
        if len(batch) >= batch_size:
            yield batch, fh.tell()
            batch = []
    if batch:
        yield batch, fh.tell()


def import_jsonl(
    path: Path,
    *,
    state_dir: Path,
    batch_size: int = 1000,
    restart: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportStats:
    """Import one event per line (the /events wire format). Line numbers in
    `rejections` are relative to where this run started reading."""
    state_dir.mkdir(parents=True, exist_ok=True)
    state_file = _state_path(path, state_dir)
    start = 0
    if state_file.exists() and not restart:
        start = int(json.loads(state_file.read_text())["offset"])
    stats = ImportStats(skipped_bytes=start)
    if progress and start:
        progress(start)
    with open(path, "rb") as fh:
        last = start
        for batch, offset in _batches(fh, start, batch_size):
            parsed = [obj for _, obj in batch if obj is not None]
            line_of_parsed = [ln for ln, obj in batch if obj is not None]
            for ln, obj in batch:
                if obj is None:
                    stats.rejections.append((ln, {"line": [ERROR_LINE_NOT_JSON]}))
                    stats.rejected += 1
            result = events_ingest(raw_events=parsed, source="import") if parsed else None
            if result is not None:
                stats.accepted += result.accepted
                stats.duplicates += result.duplicates
                stats.rejected += len(result.rejected)
                stats.rejections.extend(_with_lines(result.rejected, line_of_parsed))
            stats.lines += len(batch)
            # Committed: remember where to resume.
            state_file.write_text(json.dumps({"path": str(path), "offset": offset}))
            if progress:
                progress(offset - last)
            last = offset
    return stats


def _with_lines(rejected: list[Rejection], lines: list[int]) -> list[tuple[int, dict[str, list[str]]]]:
    return [(lines[r.index], r.errors) for r in rejected]
