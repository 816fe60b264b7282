"""Headless Chromium (Debian's) through Playwright: what every browser test module imports.

``from .chromium import allow_sync_orm_beside_playwright, browser`` makes both fixtures
available in that module (the first is autouse there).
"""
from __future__ import annotations

import shutil

import pytest


def chromium_path() -> str:
    """Debian's chromium executable (the tests fail, not skip, when it is missing)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("Debian's chromium is not installed (make test installs it)")
    return exe


@pytest.fixture(autouse=True)
def allow_sync_orm_beside_playwright(monkeypatch):
    """Playwright's sync API runs an event loop in this thread; the test's own ORM calls are plain sync."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def browser():
    """A headless Chromium, closed after the test.

    Inside ``sync_playwright()`` the test runs in another ``contextvars`` context (Playwright's
    greenlet), so its ORM calls open database connections of their own that pytest-django
    never sees: they are closed here, or the test database cannot be dropped at the end.
    """
    from django.db import connections
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            connections.close_all()
            chromium.close()


def sign_in(page, live_server, username: str = "alice", password: str = "correct-horse-battery") -> None:
    """Sign in through the login page (the ``user`` fixture's account by default)."""
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")
    page.wait_for_url("**/library/")
