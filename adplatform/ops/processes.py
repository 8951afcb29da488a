"""Start and stop the platform's processes (web, projection consumer, Celery worker and
beat) as one group, for `manage.py demo`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class ProcessGroup:
    base_dir: Path
    log_dir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(
            argv,
            cwd=self.base_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # Ctrl-C reaches us; we stop children in order
        )

    def start_platform(self, *, host: str, port: int, web_workers: int) -> None:
        py = sys.executable
        bin_dir = Path(py).parent
        self.start(
            "web",
            [
                str(bin_dir / "gunicorn"),
                "adplatform.wsgi",
                "--bind",
                f"{host}:{port}",
                "--workers",
                str(web_workers),
                "--threads",
                "4",
                "--access-logfile",
                "-",
            ],
        )
        self.start("projections", [py, "manage.py", "run_projections"])
        self.start(
            "worker",
            [py, "-m", "celery", "-A", "adplatform", "worker", "-Q", "celery,ml", "-c", "1", "--loglevel", "INFO"],
        )
        self.start("beat", [py, "-m", "celery", "-A", "adplatform", "beat", "--loglevel", "INFO"])

    def dead(self) -> list[str]:
        return [name for name, p in self.procs.items() if p.poll() is not None]

    def wait_http(self, url: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.dead():
                raise RuntimeError(f"process(es) exited during start-up: {', '.join(self.dead())}; see {self.log_dir}")
            try:
                if httpx.get(url, timeout=2).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")

    def stop(self, timeout: float = 15.0) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
