"""Rule-covered pages in one shared headless Chromium: users take turns, no copy crosses over.

User A logs in, loads pages, logs out; user B logs in in the same browser (same HTTP
cache) and reloads: B is never answered 304 for A's copy, whatever the rule's audience.
The server's log decides (see ``tests/test_demo_browser.py`` for why, and for the
browser set-up these tests share).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command

from tests.browser import CHROMIUM_ARGS, TIMEOUT_MS, Seen

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "browser-test-password"


@pytest.fixture
def site(django_user_model) -> dict[str, Any]:
    """The demo's data and rules, and two staff users, committed before the browser starts."""
    call_command("seed_demo", articles=4, verbosity=0)
    for name in ("ann", "bob"):
        django_user_model.objects.create_user(name, password=PASSWORD, is_staff=True)
    from testproject.demo.models import Article

    return {"slug": Article.objects.filter(is_published=True).values_list("slug", flat=True)[0]}


@pytest.fixture
def page(chromium_executable, sync_playwright, live_server, site, server_log) -> Iterator[Any]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable, args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(base_url=live_server.url)
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def log_in(page: Any, name: str) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", name)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#logout-form, a[href$='/logout/']")


def log_out(page: Any) -> None:
    page.goto("/admin/")
    page.click("#logout-form button")
    page.wait_for_load_state()


def exchanges(server_log: list[Seen], path: str, since: int) -> list[Seen]:
    return [seen for seen in server_log[since:] if seen.path == path]


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/plain/me/", id="per-user"),
        pytest.param("/plain/authors/", id="anonymous-only"),
        pytest.param("article", id="everyone"),
    ],
)
def test_a_second_user_in_the_same_browser_never_gets_the_first_users_copy(
    page: Any, site: dict[str, Any], server_log: list[Seen], path: str
) -> None:
    if path == "article":
        path = f"/plain/articles/{site['slug']}/"
    log_in(page, "ann")
    page.goto(path)
    page.reload()
    ann_text = page.inner_text("body")
    log_out(page)
    log_in(page, "bob")
    since = len(server_log)
    page.goto(path)
    page.reload()
    bob = exchanges(server_log, path, since)
    assert bob, "the browser sent no request for the page"
    bob_text = page.inner_text("body")
    if path.startswith("/plain/articles/"):
        # Everyone shares one copy, rightly: the page shows nothing of its visitor.
        assert bob_text == ann_text
    else:
        # B's first exchange can only be B's own page: a 304 there would be A's copy.
        assert bob[0].status == 200, bob
    if path == "/plain/me/":
        assert "Hello, ann." in ann_text
        assert "Hello, bob." in bob_text
    # Logged out again, the anonymous copy is the anonymous visitor's, not B's.
    log_out(page)
    since = len(server_log)
    page.goto(path)
    anonymous = exchanges(server_log, path, since)
    if path == "/plain/me/":
        assert anonymous[0].status == 200, anonymous
        assert "Hello, anonymous visitor." in page.inner_text("body")


def test_an_anonymous_copy_is_revalidated_with_a_304(
    page: Any, site: dict[str, Any], server_log: list[Seen]
) -> None:
    page.goto("/plain/authors/")
    since = len(server_log)
    page.reload()
    again = exchanges(server_log, "/plain/authors/", since)
    assert [seen.status for seen in again] == [304], again
    assert again[0].if_none_match is not None
