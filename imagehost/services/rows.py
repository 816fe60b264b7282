"""Row locks for writes that can race a deletion of the same row."""
from __future__ import annotations

from typing import Any

from django.db.models import Model

from .errors import NotFound


def lock_or_not_found(model: type[Model], pk: Any, message: str) -> None:
    """Lock the row ``pk`` of ``model`` until the transaction ends; NotFound(message) if it has
    been deleted. Without it, a change racing a deletion fails in ``save(update_fields=...)`` (a
    DatabaseError, a 500) or, with a plain ``save()``, writes the deleted row back."""
    if not model._default_manager.select_for_update().filter(pk=pk).exists():
        raise NotFound(message)
