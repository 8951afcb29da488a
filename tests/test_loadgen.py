"""bench/loadgen's open-loop client against a real local HTTP server: every scheduled
request is answered and counted once, keep-alive and `Connection: close` both work, and
non-2xx answers are errors with their first bodies kept."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.loadgen import run_open_loop


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        i = body["i"]
        out = json.dumps({"echo": i}).encode()
        self.send_response(500 if i % 10 == 3 else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        if i % 7 == 0:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(out)
        if i % 7 == 0:
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_every_scheduled_request_is_sent_once_and_counted(server: str) -> None:
    seen: dict[int, tuple[int, bytes]] = {}
    res = run_open_loop(
        url=server,
        path="/x",
        make_body=lambda i: json.dumps({"i": i}).encode(),
        rate=400,
        duration=0.5,
        connections=4,
        on_response=lambda i, status, body: seen.__setitem__(i, (status, body)),
    )
    assert res.scheduled == 200 and len(seen) == 200
    failing = {i for i in range(200) if i % 10 == 3}
    assert res.errors == len(failing) and res.completed == 200 - len(failing)
    assert res.statuses == {"200": 200 - len(failing), "500": len(failing)}
    # each answer belongs to its own request, also across closed and reused connections
    assert all(json.loads(body)["echo"] == i for i, (_, body) in seen.items())
    assert {i for i, (status, _) in seen.items() if status == 500} == failing
    assert len(res.latencies) == res.completed and min(res.latencies) > 0
    assert res.first_errors and res.first_errors[0].startswith("500 ")


def test_an_unreachable_server_gives_errors_not_a_crash() -> None:
    res = run_open_loop(url="http://127.0.0.1:9", path="/x", make_body=lambda i: b"{}", rate=50, duration=0.1)
    assert res.scheduled == 5 and res.errors == 5 and res.completed == 0
    assert res.statuses == {"error": 5}
