"""demo: migrate, seed a demo marketplace, start web + projections + worker + beat,
print the URLs and the admin login; Ctrl-C stops everything cleanly."""

from __future__ import annotations

import signal
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from adplatform.ops.demo import demo_credentials_create, demo_world_seed
from adplatform.ops.processes import ProcessGroup


class Command(BaseCommand):
    help = "Run the whole platform locally on the embedded defaults with a demo marketplace."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--size", default="demo", help="demo world size (tiny|demo)")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--no-seed", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        call_command("migrate", verbosity=0)
        creds = demo_credentials_create()
        group = ProcessGroup(base_dir=settings.BASE_DIR, log_dir=settings.VAR_DIR / "logs")
        base = f"http://{opts['host']}:{opts['port']}"
        stop = {"now": False}

        def _stop(signum: int, frame: Any) -> None:
            stop["now"] = True

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        try:
            group.start_platform(host=opts["host"], port=opts["port"], web_workers=opts["web_workers"])
            if not opts["no_seed"]:
                self.stdout.write("seeding: " + demo_world_seed(size=opts["size"], seed=opts["seed"]))
            group.wait_http(f"{base}/api/schema/")
            self.stdout.write(
                "\nadplatform is up\n"
                f"  admin       {base}/admin/   login: {creds.admin_user} / {creds.admin_password}\n"
                f"  API docs    {base}/api/docs/\n"
                f"  API         {base}/api/v1/\n"
                f"  storefront  {base}/storefront/?key={creds.storefront_key}\n"
                f"  storefront key (events:write ads:rank profiles:read): {creds.storefront_key}\n"
                f"  operator key (all scopes): {creds.operator_key}\n"
                f"  logs        {group.log_dir}\n"
                "Ctrl-C stops everything.\n"
            )
            self.stdout.flush()
            while not stop["now"]:
                dead = group.dead()
                if dead:
                    self.stderr.write(f"process(es) exited: {', '.join(dead)}; see {group.log_dir}")
                    break
                time.sleep(0.5)
        finally:
            self.stdout.write("stopping…")
            group.stop()
            self.stdout.write("stopped.")
