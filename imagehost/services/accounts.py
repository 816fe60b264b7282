"""Account details a user manages themselves (the e-mail address that password resets use)."""
from __future__ import annotations

from typing import Any


def set_email(user: Any, email: str) -> Any:
    """Set (or, with "", remove) the user's e-mail address; ``email`` is already validated."""
    user.email = (email or "").strip()
    user.save(update_fields=["email"])
    return user
