"""import_events --format jsonl: same validation and idempotency as the API, resumable."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest
from django.core.management import call_command

from adplatform.eventlog.selectors import count_events
from behaviour import events as behaviour_events

from .conftest import behaviour_event

pytestmark = pytest.mark.django_db(transaction=True)


def _write(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_import_then_reimport_stores_each_event_once(tmp_path: Path, settings: object) -> None:
    settings.VAR_DIR = tmp_path / "var"  # type: ignore[attr-defined]
    good = [behaviour_event(user_id=f"u{i}") for i in range(25)]
    lines = [orjson.dumps(e) for e in good[:10]] + [b"{broken", b""] + [orjson.dumps(e) for e in good[10:]]
    lines.append(orjson.dumps({**behaviour_event(), "type": "nope"}))
    src = tmp_path / "events.jsonl"
    _write(src, lines)
    out, err = io.StringIO(), io.StringIO()
    call_command("import_events", str(src), "--format", "jsonl", "--batch-size", "7", stdout=out, stderr=err)
    assert "27 lines, 25 accepted, 0 duplicates, 2 rejected" in out.getvalue()
    assert "line 11: {'line': ['Line is not valid JSON.']}" in err.getvalue()
    assert f"line 28: {{'type': ['{behaviour_events.ERR_TYPE}']}}" in err.getvalue()
    assert count_events() == 25
    # a second run resumes at the end: nothing read, nothing stored
    out = io.StringIO()
    call_command("import_events", str(src), stdout=out, stderr=io.StringIO())
    assert "0 lines, 0 accepted" in out.getvalue()
    # --restart reads everything again; idempotency stores nothing twice
    out = io.StringIO()
    call_command("import_events", str(src), "--restart", stdout=out, stderr=io.StringIO())
    assert "27 lines, 0 accepted, 25 duplicates, 2 rejected" in out.getvalue()
    assert count_events() == 25


def test_import_resumes_after_an_interruption(
    tmp_path: Path, settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.VAR_DIR = tmp_path / "var"  # type: ignore[attr-defined]
    src = tmp_path / "events.jsonl"
    _write(src, [orjson.dumps(behaviour_event(user_id=f"u{i}")) for i in range(30)])
    from behaviour import importers

    calls = {"n": 0}
    real = importers.events_ingest

    def flaky(**kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("killed")
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(importers, "events_ingest", flaky)
    with pytest.raises(RuntimeError):
        call_command("import_events", str(src), "--batch-size", "10", stdout=io.StringIO(), stderr=io.StringIO())
    assert count_events() == 20
    monkeypatch.setattr(importers, "events_ingest", real)
    out = io.StringIO()
    call_command("import_events", str(src), "--batch-size", "10", stdout=out, stderr=io.StringIO())
    assert "10 lines, 10 accepted, 0 duplicates, 0 rejected (resumed after" in out.getvalue()
    assert count_events() == 30
