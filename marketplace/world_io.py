"""Write a world and its generated history to files (deterministic bytes)."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from .world import Exposure, World, generate_history

WORLD_FILE = "world.json"
EVENTS_FILE = "events.jsonl.gz"
EXPOSURES_FILE = "exposures.jsonl.gz"
MANIFEST_FILE = "manifest.json"


def exposure_json(world: World, x: Exposure) -> dict[str, Any]:
    cr = world.creatives[x.creative_idx]
    return {
        "exposure_key": x.exposure_key,
        "user_id": world.shoppers[x.user_idx].user_id,
        "user_idx": x.user_idx,
        "creative": cr.key,
        "creative_idx": x.creative_idx,
        "campaign": cr.campaign,
        "product_id": cr.product_id,
        "at": x.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "placement": x.placement,
        "position": x.position,
        "page_type": x.page_type,
        "context_leaf": x.context_leaf,
        "clicked_at": x.clicked_at.strftime("%Y-%m-%dT%H:%M:%SZ") if x.clicked_at else None,
        "converted_at": x.converted_at.strftime("%Y-%m-%dT%H:%M:%SZ") if x.converted_at else None,
        "revenue": x.revenue,
        "order_id": x.order_id,
        "p_click": x.p_click,
        "p_purchase": x.p_purchase,
    }


def _gz(raw: BinaryIO) -> gzip.GzipFile:
    # mtime=0 and no file name in the header: same content, same bytes
    return gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=1)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_world(
    world: World, out: Path, *, days: int | None = None, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Write world.json, events.jsonl.gz, exposures.jsonl.gz and manifest.json under `out`.
    Returns the manifest (counts and sha256 of each file)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / WORLD_FILE).write_text(json.dumps(world.to_json(), sort_keys=True, separators=(",", ":")))
    n_events = n_exposures = n_clicks = n_conversions = 0
    with (out / EVENTS_FILE).open("wb") as ev_raw, (out / EXPOSURES_FILE).open("wb") as ex_raw:
        ev_f, ex_f = _gz(ev_raw), _gz(ex_raw)
        for day in generate_history(world, days=days, progress=progress):
            ev_f.write("".join(json.dumps(e, sort_keys=True) + "\n" for e in day.events).encode())
            ex_f.write(
                "".join(json.dumps(exposure_json(world, x), sort_keys=True) + "\n" for x in day.exposures).encode()
            )
            n_events += len(day.events)
            n_exposures += len(day.exposures)
            n_clicks += sum(1 for x in day.exposures if x.clicked_at is not None)
            n_conversions += sum(1 for x in day.exposures if x.converted_at is not None)
        ev_f.close()
        ex_f.close()
    manifest = {
        "seed": world.cfg.seed,
        "users": len(world.shoppers),
        "products": len(world.products),
        "advertisers": len(world.advertisers),
        "campaigns": len(world.campaigns),
        "creatives": len(world.creatives),
        "events": n_events,
        "exposures": n_exposures,
        "clicks": n_clicks,
        "conversions": n_conversions,
        "sha256": {name: _sha256(out / name) for name in (WORLD_FILE, EVENTS_FILE, EXPOSURES_FILE)},
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n")
    return manifest
