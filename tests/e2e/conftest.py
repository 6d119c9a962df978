"""Browser harness shared by the admin's browser tests: Debian's chromium driven by Playwright
(never `playwright install`: `make e2e-deps` installs chromium), a logged-in page, and
screenshots saved under ``tests/e2e/artifacts/`` (git-ignored) to be looked at."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


WIDE = {"width": 1440, "height": 900}  # the desktop width the admin is judged at
NARROW = {"width": 390, "height": 844}  # a phone


@pytest.fixture
def chromium(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A headless Debian chromium; ``chromium.new_page(viewport=NARROW)`` opens a page in a
    context of its own (its own cookies)."""
    # Playwright's sync API runs an event loop in this thread; the test's ORM calls are still
    # synchronous, so Django's async-safety guard is lifted for this test only.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make e2e-deps` (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(chromium) -> object:
    """A page at desktop width (1440 px)."""
    page = chromium.new_page(viewport=WIDE)
    page.set_default_timeout(15_000)
    return page


@pytest.fixture
def narrow_page(chromium) -> object:
    """A page at phone width (390 px)."""
    page = chromium.new_page(viewport=NARROW)
    page.set_default_timeout(15_000)
    return page


def shot(page, name: str) -> None:
    """Save a full-page screenshot of ``page`` as ``artifacts/<name>.png``."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def admin_login(live_server, django_user_model) -> Callable[..., str]:
    """Log ``page`` in to the live server's admin as a fresh superuser; returns the base URL.
    Call it with ``username=`` and ``superuser=False`` plus ``permissions=[...]`` for a
    staff user who holds only those permissions (``app_label.codename``)."""

    def login(
        page,
        *,
        username: str = "e2e-admin",
        superuser: bool = True,
        permissions: tuple[str, ...] = (),
    ) -> str:
        from django.contrib.auth.models import Permission

        password = "e2e-pass-1234"
        if superuser:
            django_user_model.objects.create_superuser(username, password=password)
        else:
            user = django_user_model.objects.create_user(username, password=password, is_staff=True)
            for dotted in permissions:
                app_label, codename = dotted.split(".", 1)
                user.user_permissions.add(
                    Permission.objects.get(content_type__app_label=app_label, codename=codename)
                )
        base = live_server.url
        page.goto(f"{base}/admin/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        page.wait_for_url(f"{base}/admin/")
        return base

    return login
