"""The rule admin in a real headless Chromium: a rule typed into the form makes a page 304.

Conventions (Chromium, Playwright, no ORM once the browser runs) as in ``test_demo_browser``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testproject.demo.factories import ArticleFactory, AuthorFactory
from tests.browser import Seen, fresh_pages

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN_PASSWORD = "browser-test-password"
RULES_URL = "/admin/django_conditional/conditionalrule/"
# The README's picture of the change form, written only with CONDITIONAL_SCREENSHOT=1:
# a test run never rewrites the repository.
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "admin-rule.png"


@pytest.fixture
def site(django_user_model) -> None:
    """Authors with articles, and a superuser, committed before the browser starts."""
    for name in ("Ada Lovelace", "Tim Berners-Lee"):
        ArticleFactory.create_batch(2, author=AuthorFactory(name=name))
    django_user_model.objects.create_superuser(
        username="editor", email="editor@example.com", password=ADMIN_PASSWORD
    )


@pytest.fixture
def stored_rule(site) -> str:
    """A rule for the author index, made with the ORM before the browser starts.

    The counts it collects are kept in memory by the live server, which runs in this
    process: the admin shows them with ``rule_counts.pending``.
    """
    from django.contrib.contenttypes.models import ContentType

    from django_conditional.models import ConditionalRule
    from testproject.demo.models import Article, Author

    rule = ConditionalRule.objects.create(
        name="Author index",
        path_patterns="/plain/authors/",
        max_age=0,
        must_revalidate=True,
        notes="Every author with their number of published articles.",
    )
    rule.depends_on.set(ContentType.objects.get_for_models(Author, Article).values())
    return rule.name


@pytest.fixture
def new_page(
    chromium_executable, sync_playwright, live_server, site, server_log
) -> Iterator[Callable[[], Any]]:
    """Pages in fresh browser contexts: each its own cookies (no session) and HTTP cache."""
    viewport = {"width": 1280, "height": 900}
    with fresh_pages(
        sync_playwright, chromium_executable, live_server.url, viewport=viewport
    ) as make:
        yield make


def requests_for(server_log: list[Seen], path: str) -> list[Seen]:
    return [seen for seen in server_log if seen.path == path]


def log_in(page: Any, next_path: str) -> None:
    page.goto(f"/admin/login/?next={next_path}")
    page.get_by_label("Username").fill("editor")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{next_path}")


def load_twice(page: Any, path: str) -> Any:
    """Visit ``path`` and reload it: Chromium revalidates with the ETag it kept."""
    first = page.goto(path)
    page.reload()
    return first


def test_a_rule_made_in_the_admin_answers_the_next_visitor_with_304(new_page, server_log):
    editor = new_page()
    log_in(editor, f"{RULES_URL}add/")
    editor.locator("#id_name").fill("Author index")
    editor.locator("#id_path_patterns").fill("/plain/authors/")
    editor.locator("#id_depends_on_from").select_option(
        label=["demo.Article (article)", "demo.Author (author)"]
    )
    editor.locator("#id_depends_on_add").click()
    editor.locator("#id_max_age").fill("0")
    editor.locator("#id_must_revalidate").check()
    editor.locator("input[name=_save]").last.click()
    editor.wait_for_url(f"**{RULES_URL}")
    assert editor.locator("#result_list").get_by_role("link", name="Author index").is_visible()

    # Anonymous visitors only (the default): the editor's own session would pass through.
    visitor = new_page()
    first = load_twice(visitor, "/plain/authors/")

    assert first.status == 200
    assert requests_for(server_log, "/plain/authors/") == [
        Seen("/plain/authors/", if_none_match=None, status=200),
        Seen("/plain/authors/", if_none_match=first.headers["etag"], status=304),
    ]
    assert visitor.get_by_role("link", name="Ada Lovelace").is_visible()


def test_invalid_input_shows_what_to_fix_beside_each_field(new_page, server_log):
    editor = new_page()
    log_in(editor, f"{RULES_URL}add/")
    editor.locator("#id_name").fill("Too wide")
    editor.locator("#id_path_patterns").fill("/admin/**\n/plain/[a-z]/")
    editor.locator("#id_vary").fill("Cookie")
    editor.locator("input[name=_save]").last.click()
    # The same URL again, with the form's errors: wait for them rather than for a URL.
    editor.locator(".errornote").wait_for()

    path_errors = editor.locator(".field-path_patterns .errorlist li").all_inner_texts()
    assert path_errors == [
        "line 2: Path pattern '/plain/[a-z]/': '[' is not allowed (character classes are "
        "not supported); use * for any characters within one segment and ** for any number "
        "of segments.",
        "'/admin/**' covers the admin (/admin/), which no rule may answer: narrow it to pages "
        "outside /admin/.",
    ]
    assert editor.locator(".field-vary .errorlist").inner_text() == (
        "Varying on Cookie means each visitor's copy differs: make the rule per user instead."
    )
    # Nothing saved: the form is shown again with what was typed.
    assert editor.url.endswith(f"{RULES_URL}add/")
    assert editor.locator("#id_path_patterns").input_value() == "/admin/**\n/plain/[a-z]/"
    assert [seen.status for seen in requests_for(server_log, f"{RULES_URL}add/")] == [200, 200]


def test_the_changelist_shows_the_answers_counted_by_this_process(
    stored_rule, new_page, server_log
):
    # stored_rule comes first: the rule is written before the browser starts.
    visitor = new_page()
    load_twice(visitor, "/plain/authors/")
    assert [seen.status for seen in requests_for(server_log, "/plain/authors/")] == [200, 304]

    editor = new_page()
    log_in(editor, RULES_URL)
    row = editor.get_by_role("row").filter(has=editor.get_by_role("link", name=stored_rule))
    assert row.locator("td.field-not_modified_count").inner_text() == "1"
    assert row.locator("td.field-full_count").inner_text() == "1"
    assert row.locator("td.field-hit_rate_shown").inner_text() == "50%"

    row.get_by_role("link", name=stored_rule).click()
    editor.wait_for_url("**/change/")
    answers = editor.locator(".field-answers")
    assert "Hit rate (304 / (304 + 200))\t50%" in answers.inner_text()
    if os.environ.get("CONDITIONAL_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        editor.screenshot(path=str(SCREENSHOT), full_page=True)
