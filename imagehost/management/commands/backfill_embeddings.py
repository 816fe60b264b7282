"""``manage.py backfill_embeddings``: embed pictures that have no similarity vector yet."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from imagehost.services.similar import backfill


class Command(BaseCommand):
    help = "Embed (from its token) every picture without a vector of the default similarity model."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=64, help="pictures read per query (default 64)")
        parser.add_argument("--limit", type=int, default=None, help="stop after this many pictures")

    def handle(self, *args, batch_size: int, limit: int | None, **options) -> None:
        if batch_size < 1 or (limit is not None and limit < 1):
            raise CommandError("--batch-size and --limit must be positive")
        done = backfill(batch_size=batch_size, limit=limit, report=self.stdout.write)
        self.stdout.write(self.style.SUCCESS(f"Done: {done} pictures embedded."))
