"""``manage.py backfill_embeddings``: embed pictures that have no similarity vector yet."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from imagehost.services.errors import ServiceError
from imagehost.services.similar import backfill


#: One query's worth: more would hold that many decoded pictures' rows in memory at once.
MAX_BATCH = 10_000


class Command(BaseCommand):
    help = "Embed (from its token) every picture without a vector of the default similarity model."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=64, help=f"pictures read per query (default 64, at most {MAX_BATCH})")
        parser.add_argument("--limit", type=int, default=None, help="stop after trying this many pictures")

    def handle(self, *args, batch_size: int, limit: int | None, **options) -> None:
        if not 1 <= batch_size <= MAX_BATCH or (limit is not None and limit < 1):
            raise CommandError(f"--batch-size must be 1 to {MAX_BATCH:,} and --limit positive")
        try:
            done = backfill(batch_size=batch_size, limit=limit, report=self.stdout.write)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Done: {done} pictures embedded."))
