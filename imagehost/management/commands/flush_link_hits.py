"""``manage.py flush_link_hits``: add the short-link hits counted in the cache to the database."""
from django.core.management.base import BaseCommand

from imagehost.services.hits import flush_hits


class Command(BaseCommand):
    help = "Add the short-link hits counted in the cache to ShortLink.hits (beat does this every EMMM_HIT_FLUSH_INTERVAL_S)."

    def handle(self, *args, **options) -> None:
        self.stdout.write(f"flushed {flush_hits()} hits")
