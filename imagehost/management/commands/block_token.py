"""``manage.py block_token [--] <token | token URL | short URL | slug | sha256> [--reason ...]``: a takedown."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from imagehost.services import tokens
from imagehost.services.errors import ServiceError


class Command(BaseCommand):
    help = "Take an image down: every token URL and short link for it answers 410 (same service as the admin)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("target", help="a token, a token URL (/i/… or /image?q=…), a short URL (/s/…), a short "
                            "link's slug or a sha256 (put -- before one that begins with -)")
        parser.add_argument("--reason", default="", help="why (kept with the block, at most 300 characters)")

    def handle(self, *args, target: str, reason: str, **options) -> None:
        try:
            blocked = tokens.block_token(target, reason=reason)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"blocked {blocked.token_sha256}")
