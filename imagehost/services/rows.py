"""Row locks for writes that can race a deletion of the same row."""
from __future__ import annotations

from django.db.models import Model

from .errors import NotFound


def lock_or_not_found(instance: Model, message: str) -> None:
    """Lock ``instance``'s row until the transaction ends; NotFound(message) if it has been
    deleted. Without it, a change racing a deletion fails in ``save(update_fields=...)`` (a
    DatabaseError, a 500) or, with a plain ``save()``, writes the deleted row back."""
    if not type(instance)._default_manager.select_for_update().filter(pk=instance.pk).exists():
        raise NotFound(message)
