"""Shared benchmark plumbing: an isolated platform (own embedded Postgres under
var/bench-<name>) started as real processes, machine facts, percentile maths."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def machine() -> str:
    cpus = os.cpu_count()
    mem = ""
    try:
        with open("/proc/meminfo") as fh:
            mem = f", {int(fh.readline().split()[1]) // 1024 // 1024} GiB"
    except OSError:
        pass
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    except OSError:
        pass
    return f"{platform.machine()} {model} ({cpus} cores{mem}), Python {platform.python_version()}"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Platform:
    """gunicorn + (optionally) the projection consumer on a private embedded Postgres."""

    name: str
    web_workers: int = 2
    threads: int = 2
    projections: bool = True
    var_dir: Path = field(init=False)
    port: int = field(init=False)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.var_dir = ROOT / "var" / f"bench-{self.name}"
        self.port = free_port()

    @property
    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "ADPLATFORM_VAR_DIR": str(self.var_dir),
            "DJANGO_SETTINGS_MODULE": "adplatform.settings.local",
            "DJANGO_DEBUG": "false",
            "LOG_LEVEL": "WARNING",
        }
        env.pop("DATABASE_URL", None)
        return env

    def manage(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True, capture_output=True, text=True
        )
        return out.stdout

    def start(self) -> None:
        self.manage("migrate", "--noinput")
        logs = self.var_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        bin_dir = Path(sys.executable).parent
        self.procs.append(
            subprocess.Popen(
                [
                    str(bin_dir / "gunicorn"),
                    "adplatform.wsgi",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--workers",
                    str(self.web_workers),
                    "--threads",
                    str(self.threads),
                    "--backlog",
                    "2048",
                    # storefront servers hold keep-alive connections; gunicorn's 2 s default
                    # closes idle ones under the client's next request (BrokenPipe)
                    "--keep-alive",
                    "30",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=open(logs / "web.log", "ab"),
                stderr=subprocess.STDOUT,
            )
        )
        if self.projections:
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "manage.py", "run_projections"],
                    cwd=ROOT,
                    env=self.env,
                    stdout=open(logs / "projections.log", "ab"),
                    stderr=subprocess.STDOUT,
                )
            )
        import httpx

        for _ in range(200):
            try:
                if httpx.get(f"{self.url}/api/schema/", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()

    def connect(self):  # type: ignore[no-untyped-def]
        import psycopg

        return psycopg.connect(host=str(self.var_dir / "pgdata"), user="postgres", dbname="adplatform", autocommit=True)


def update_benchmarks_doc(section: str, body: str) -> None:
    """Replace (or append) `## section` in docs/benchmarks.md."""
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n\nLatest figures; each section names its command.\n"
    marker = f"## {section}\n"
    start = text.find(marker)
    block = marker + body.rstrip() + "\n\n"
    if start == -1:
        text = text.rstrip() + "\n\n" + block
    else:
        end = text.find("\n## ", start + len(marker))
        text = text[:start] + block + (text[end + 1 :] if end != -1 else "")
    path.write_text(text.rstrip() + "\n")
