"""The demo site over real HTTP: Django's threaded WSGI server on 127.0.0.1.

pytest-django's ``live_server`` runs the same ``WSGIServer``/``ServerHandler`` pair
as ``runserver``, on an ephemeral port. Requests go through ``http.client`` and
``urllib.request``, so what is asserted is what crossed the socket, framing included.
(gunicorn is not a test dependency, so only Django's server is exercised.)
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message

import pytest
from django.urls import reverse

from testproject.demo.factories import ArticleFactory, AuthorFactory, CommentFactory, TagFactory
from testproject.demo.models import Article
from tests.conftest import age_stamps

# The server thread reads what the test thread wrote, so the data must be committed.
pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

TIMEOUT_SECONDS = 10


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes


def request(connection, path, headers=None, method="GET"):
    connection.request(method, path, headers=headers or {})
    response = connection.getresponse()
    return Reply(response.status, response.headers, response.read())


@pytest.fixture
def connection(live_server):
    connection = http.client.HTTPConnection(
        live_server.thread.host, live_server.thread.port, timeout=TIMEOUT_SECONDS
    )
    yield connection
    connection.close()


@pytest.fixture
def article():
    tag = TagFactory(name="HTTP", slug="http")
    author = AuthorFactory(name="Roy Fielding", slug="roy")
    ArticleFactory.create_batch(3, author=author, tags=[tag])
    article = ArticleFactory(author=author, title="Conditional requests", tags=[tag])
    CommentFactory.create_batch(2, article=article)
    # Dates are sent once the stamp clock has left their second.
    age_stamps()
    return article


def assert_not_modified(reply, first):
    """A 304 on the wire: the 200's validators and caching fields, no body, no type."""
    assert reply.status == 304
    assert reply.body == b""
    assert reply.headers["ETag"] == first.headers["ETag"]
    assert reply.headers["Last-Modified"] == first.headers["Last-Modified"]
    assert reply.headers["Cache-Control"] == first.headers["Cache-Control"]
    assert reply.headers.get("Vary") == first.headers.get("Vary")
    assert reply.headers["Content-Type"] is None
    # RFC 9110 section 8.6: a 304 may only repeat the 200's length, which we cannot
    # know early. Our 304 yields one empty chunk so that wsgiref's finish_content does
    # not default the header to "0" under Django's development server.
    assert reply.headers.get("Content-Length") is None


def test_server_listens_on_loopback_with_an_ephemeral_port(live_server):
    host, port = live_server.thread.httpd.server_address[:2]

    assert host == "127.0.0.1"
    assert port != 0


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        # Every Last-Modified sent is exact: If-Modified-Since alone revalidates too.
        pytest.param("/", "text/html; charset=utf-8", id="list"),
        pytest.param("/articles/{slug}/", "text/html; charset=utf-8", id="detail"),
        pytest.param("/async/articles/{slug}/", "text/html; charset=utf-8", id="async"),
        pytest.param("/authors/roy/", "text/html; charset=utf-8", id="author"),
        pytest.param("/tags/http/", "text/html; charset=utf-8", id="tag"),
        pytest.param("/about/", "text/html; charset=utf-8", id="about"),
        pytest.param("/feed.txt", "text/plain", id="feed"),
    ],
)
def test_pages_revalidate_over_http(connection, article, path, content_type):
    path = path.format(slug=article.slug)
    first = request(connection, path)

    by_etag = request(connection, path, {"If-None-Match": first.headers["ETag"]})
    by_date = request(connection, path, {"If-Modified-Since": first.headers["Last-Modified"]})

    assert first.status == 200
    assert first.headers["Content-Type"] == content_type
    assert int(first.headers["Content-Length"]) == len(first.body) > 0
    assert "max-age=0" in first.headers["Cache-Control"]
    assert_not_modified(by_etag, first)
    assert_not_modified(by_date, first)


def test_rendered_pages_have_weak_tags(connection, article):
    for path in ("/", article.get_absolute_url(), "/authors/roy/", "/tags/http/", "/about/"):
        assert request(connection, path).headers["ETag"].startswith('W/"'), path


def test_a_page_changed_within_the_second_sends_no_date(connection, article):
    # The about page's date is its stamps' newest move: within that second no
    # Last-Modified is sent (a second change in the same second could not move it),
    # and the ETag alone revalidates.
    Article.objects.filter(pk=article.pk).update(title="Renamed")
    first = request(connection, "/about/")

    reply = request(connection, "/about/", {"If-None-Match": first.headers["ETag"]})

    assert first.status == 200
    assert first.headers["Last-Modified"] is None
    assert reply.status == 304


def test_a_304_leaves_the_connection_in_a_clean_state(connection, article):
    # Had the 304 carried a body, or promised one, the third response would be read
    # from the wrong bytes. Django's development server closes the connection after any
    # response without a Content-Length (django.core.servers.basehttp.ServerHandler),
    # 304s included; http.client then reconnects for the next request.
    first = request(connection, "/")

    revalidated = request(connection, "/", {"If-None-Match": first.headers["ETag"]})
    again = request(connection, "/")

    assert revalidated.status == 304
    assert revalidated.headers["Connection"] == "close"
    assert again.status == 200
    assert again.body == first.body


def test_head_revalidates(connection, article):
    first = request(connection, "/", method="HEAD")

    revalidated = request(connection, "/", {"If-None-Match": first.headers["ETag"]}, "HEAD")

    assert first.status == 200
    assert first.body == b""
    assert revalidated.status == 304
    assert revalidated.headers["ETag"] == first.headers["ETag"]


def test_a_change_is_never_answered_with_304(connection, article):
    url = article.get_absolute_url()
    first = request(connection, url)
    CommentFactory(article=article, body="Written after the first visit")

    reply = request(connection, url, {"If-None-Match": first.headers["ETag"]})

    assert reply.status == 200
    assert reply.headers["ETag"] != first.headers["ETag"]
    assert b"Written after the first visit" in reply.body


def test_an_edit_elsewhere_keeps_the_304(connection, article):
    # The server thread caches the validator; the write in this thread moves the
    # article table's stamp, the cached entry is recomputed, and the tag holds: and
    # with it the date, though the article table's stamp moved within this second.
    url = article.get_absolute_url()
    first = request(connection, url)
    other = Article.objects.exclude(pk=article.pk).first()
    other.title = "Edited elsewhere"
    other.save()

    reply = request(connection, url, {"If-None-Match": first.headers["ETag"]})

    assert_not_modified(reply, first)
    # The page is as it was, so is its date: If-Modified-Since alone keeps its 304.
    by_date = request(connection, url, {"If-Modified-Since": first.headers["Last-Modified"]})
    assert_not_modified(by_date, first)


def test_a_missing_article_is_404_even_with_if_match(connection, article):
    reply = request(connection, "/articles/no-such-article/", {"If-Match": '"anything"'})

    assert reply.status == 404


def test_a_failed_if_match_is_412(connection, article):
    reply = request(connection, article.get_absolute_url(), {"If-Match": '"stale"'})

    assert reply.status == 412


def test_urllib_sees_304_as_an_error_to_handle(live_server, article):
    url = live_server.url + reverse("demo:article-list")
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
        etag = response.headers["ETag"]
        assert response.status == 200

    revalidation = urllib.request.Request(url, headers={"If-None-Match": etag})
    # urllib has no cache: a 304 reaches the caller as an HTTPError to handle.
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(revalidation, timeout=TIMEOUT_SECONDS)

    with caught.value as error:
        assert error.code == 304
        assert error.headers["ETag"] == etag
        assert error.read() == b""
