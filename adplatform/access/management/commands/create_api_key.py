"""create_api_key --scopes events:write,ads:rank [--name NAME]: prints the key alone on
the last line of stdout."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from adplatform.access.services import api_key_create


class Command(BaseCommand):
    help = "Create a platform API key with the given scopes; the key is printed once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scopes", required=True, help="comma- or space-separated scopes")
        parser.add_argument("--name", default="")
        parser.add_argument("--advertiser-id", type=int, default=None)

    def handle(self, *args: Any, **opts: Any) -> None:
        scopes = [s for s in opts["scopes"].replace(",", " ").split() if s]
        if not scopes:
            raise CommandError("--scopes needs at least one scope")
        try:
            issued = api_key_create(scopes=scopes, name=opts["name"], advertiser_id=opts["advertiser_id"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"created key #{issued.id} with scopes {', '.join(issued.scopes)}")
        self.stdout.write(issued.key)
