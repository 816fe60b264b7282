"""``manage.py unblock_token [--] <token | token URL | short URL | slug | sha256>``: lift a takedown."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from imagehost.services import tokens
from imagehost.services.errors import ServiceError


class Command(BaseCommand):
    help = "Lift a takedown made by block_token or the admin."

    def add_arguments(self, parser) -> None:
        parser.add_argument("target", help="a token, a token URL (/i/… or /image?q=…), a short URL (/s/…), a short "
                            "link's slug or a sha256 (put -- before one that begins with -)")

    def handle(self, *args, target: str, **options) -> None:
        try:
            removed = tokens.unblock_token(target)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        if not removed:
            raise CommandError("That token is not blocked.")
        self.stdout.write("unblocked")
