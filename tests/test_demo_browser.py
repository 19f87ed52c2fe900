"""The demo site in a real headless Chromium: the browser's cache revalidates, gets 304s.

Debian's ``chromium`` is driven through Playwright's sync API with that executable;
``playwright install`` is never run. Without Chromium (or Playwright) the tests skip,
unless ``CONDITIONAL_REQUIRE_BROWSER=1`` (CI), where they fail.

Playwright's sync API keeps an asyncio loop running in the test's thread while the
browser is open, and Django refuses ORM calls there (``SynchronousOnlyOperation``).
Rather than set ``DJANGO_ALLOW_ASYNC_UNSAFE``, these tests touch the database only
before the browser starts (fixtures) and change data through the admin, in the browser.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from testproject.demo.factories import ArticleFactory, AuthorFactory, CommentFactory, TagFactory
from tests.browser import CHROMIUM_ARGS, TIMEOUT_MS, Seen

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN_PASSWORD = "browser-test-password"


@pytest.fixture
def site(django_user_model) -> dict[str, Any]:
    """Articles, and a superuser for the admin, committed before the browser starts.

    ``page`` depends on this fixture so that every ORM call happens before
    Playwright's event loop runs in this thread (see the module docstring).
    """
    tag = TagFactory(name="Browsers", slug="browsers")
    author = AuthorFactory(name="Tim Berners-Lee", slug="timbl")
    others = ArticleFactory.create_batch(4, author=author, tags=[tag])
    article = ArticleFactory(author=author, title="The first web page", tags=[tag])
    CommentFactory(article=article, body="Still online.")
    django_user_model.objects.create_superuser(
        username="editor", email="editor@example.com", password=ADMIN_PASSWORD
    )
    return {"pk": article.pk, "slug": article.slug, "other_slug": others[0].slug}


@pytest.fixture
def page(chromium_executable, sync_playwright, live_server, site, server_log) -> Iterator[Any]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable, args=CHROMIUM_ARGS, headless=True
        )
        # A fresh context: an empty HTTP cache, which Playwright leaves enabled.
        context = browser.new_context(base_url=live_server.url)
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def requests_for(server_log: list[Seen], path: str) -> list[Seen]:
    return [seen for seen in server_log if seen.path == path]


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/", id="list"),
        pytest.param("/articles/{slug}/", id="detail"),
        pytest.param("/async/articles/{slug}/", id="async-detail"),
        pytest.param("/authors/timbl/", id="author"),
        pytest.param("/tags/browsers/", id="tag"),
    ],
)
def test_reload_revalidates_and_keeps_the_page(page, site, server_log, path):
    path = path.format(slug=site["slug"])
    first = page.goto(path)
    etag = first.headers["etag"]

    page.reload()

    assert first.status == 200
    assert requests_for(server_log, path) == [
        Seen(path, if_none_match=None, status=200),
        Seen(path, if_none_match=etag, status=304),
    ]
    # Chromium shows the cached copy the 304 vouched for.
    assert page.get_by_text("The first web page").first.is_visible()


def test_following_a_link_back_to_the_list_revalidates(page, site, server_log):
    first = page.goto("/")
    page.get_by_role("link", name="The first web page").click()
    page.wait_for_url(f"**/articles/{site['slug']}/")

    page.get_by_role("link", name="Demo blog").click()
    page.wait_for_url(first.url)

    assert requests_for(server_log, "/") == [
        Seen("/", if_none_match=None, status=200),
        Seen("/", if_none_match=first.headers["etag"], status=304),
    ]
    assert page.get_by_role("heading", name="Articles").is_visible()
    assert page.get_by_role("link", name="The first web page").is_visible()


def open_in_the_admin(page, pk):
    page.goto(f"/admin/login/?next=/admin/demo/article/{pk}/change/")
    page.get_by_label("Username").fill("editor")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**/admin/demo/article/{pk}/change/")


def edit_title_in_the_admin(page, pk, title):
    open_in_the_admin(page, pk)
    page.locator("#id_title").fill(title)
    page.locator("input[name=_save]").click()
    page.wait_for_url("**/admin/demo/article/")


def test_an_edit_in_the_admin_is_never_answered_with_304(page, site, server_log):
    first = page.goto("/")
    etag = first.headers["etag"]

    edit_title_in_the_admin(page, site["pk"], "The first web page, revised")

    revisited = page.goto("/")

    assert revisited.headers["etag"] != etag
    # The browser did ask conditionally, with the old tag, and got the new page.
    assert requests_for(server_log, "/")[-1] == Seen("/", if_none_match=etag, status=200)
    assert page.get_by_role("link", name="The first web page, revised").is_visible()


def test_an_edit_in_the_admin_keeps_other_articles_304(page, site, server_log):
    other = f"/articles/{site['other_slug']}/"
    edited = f"/articles/{site['slug']}/"
    other_etag = page.goto(other).headers["etag"]
    edited_etag = page.goto(edited).headers["etag"]

    edit_title_in_the_admin(page, site["pk"], "The first web page, revised")
    page.goto(other)
    page.goto(edited)

    # The edited article's page is sent again; the other one is still current.
    assert requests_for(server_log, other)[-1] == Seen(other, if_none_match=other_etag, status=304)
    assert requests_for(server_log, edited)[-1] == Seen(
        edited, if_none_match=edited_etag, status=200
    )
    assert page.get_by_role("heading", name="The first web page, revised").is_visible()


# Layout -------------------------------------------------------------------------------


def test_the_footer_ends_a_short_page_at_the_bottom_of_the_window(page, site):
    page.set_viewport_size({"width": 1000, "height": 2400})
    page.goto("/about/")
    footer_bottom = page.evaluate(
        "() => document.querySelector('footer.site').getBoundingClientRect().bottom"
    )
    # No band of the page's grey below the footer.
    assert footer_bottom == 2400


def test_the_comment_inline_is_no_wider_than_the_admin_form(page, site):
    page.set_viewport_size({"width": 1280, "height": 900})
    open_in_the_admin(page, site["pk"])
    form, inline, page_width, window_width = page.evaluate(
        """() => [
            document.querySelector('#article_form').getBoundingClientRect().width,
            document.querySelector('.inline-group table').getBoundingClientRect().width,
            document.documentElement.scrollWidth,
            document.documentElement.clientWidth,
        ]"""
    )
    assert inline <= form
    assert page_width == window_width  # no horizontal scrolling
