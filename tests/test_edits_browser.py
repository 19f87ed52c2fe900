"""Two editors in a real headless Chromium, one article: the second save is refused, kept.

Both open the article's admin change form; the first saves a new title; the second,
who typed a new body meanwhile, saves and sees the conflict named, their text still
in the form, and nothing of theirs stored. Saving again, having seen it, keeps theirs.
Conventions (Chromium, Playwright) as in ``test_demo_browser``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from testproject.demo.factories import ArticleFactory
from tests.browser import fresh_pages

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "browser-test-password"


@pytest.fixture
def article_id(django_user_model) -> int:
    for name in ("first", "second"):
        django_user_model.objects.create_superuser(
            username=name, email=f"{name}@example.com", password=PASSWORD
        )
    return int(ArticleFactory(title="The original title", body="The original body").pk)


@pytest.fixture
def editor(
    chromium_executable, sync_playwright, live_server, article_id
) -> Iterator[Callable[[str], Any]]:
    """A logged-in admin page per editor, each in its own browser context (own session).

    After ``article_id``: no ORM once the browser runs (Playwright holds an event loop).
    """
    with fresh_pages(sync_playwright, chromium_executable, live_server.url) as new_page:

        def make(username: str) -> Any:
            page = new_page()
            page.goto("/admin/login/?next=/admin/")
            page.get_by_label("Username").fill(username)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**/admin/")
            return page

        yield make


def test_the_second_editors_save_is_refused_and_their_text_kept(editor, article_id):
    change = f"/admin/demo/article/{article_id}/change/"
    first, second = editor("first"), editor("second")
    first.goto(change)
    second.goto(change)

    first.locator("#id_title").fill("The first editor's title")
    first.locator("input[name=_save]").click()
    first.wait_for_url("**/admin/demo/article/")

    second.locator("#id_body").fill("The second editor's careful new body")
    second.locator("input[name=_save]").click()
    error = second.locator(".errornote, ul.errorlist.nonfield")
    error.first.wait_for()
    text = second.locator("ul.errorlist.nonfield").inner_text()
    assert "Someone else saved this article after you opened it" in text
    assert "The first editor's title" in text  # what changed, named
    assert second.locator("#id_body").input_value() == "The second editor's careful new body"
    # The stored article is the first editor's; nothing of the second's was written.
    first.goto(change)
    assert first.locator("#id_title").input_value() == "The first editor's title"
    assert first.locator("#id_body").input_value() == "The original body"

    # Saving again, having seen the conflict, keeps the second editor's text on purpose.
    second.locator("input[name=_save]").click()
    second.wait_for_url("**/admin/demo/article/")
    first.goto(change)
    assert first.locator("#id_body").input_value() == "The second editor's careful new body"
    # The form as the second editor submitted it: with the title the form showed them.
    assert first.locator("#id_title").input_value() == "The original title"
