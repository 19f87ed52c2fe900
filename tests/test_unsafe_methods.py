"""Unsafe methods on a view of one object: every method, header form and object state.

The precondition and the write are one step (``guarded_writes``): what the table
checks is the answer, what is stored afterwards, and the tags the answers carry.
The races themselves ("changed meanwhile", "deleted meanwhile", "created meanwhile")
are staged at the one moment they matter, between the evaluation and the claim;
tests/test_writes_live.py releases real concurrent requests against gunicorn.
"""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from tests.conftest import age_stamps
from tests.races import before_claim
from tests.testapp import write_views
from tests.testapp.models import Article, Author, Note

pytestmark = [pytest.mark.urls("tests.testapp.urls"), pytest.mark.django_db(transaction=True)]

METHODS = ["PUT", "PATCH", "POST", "DELETE"]
SUCCESS = {"PUT": 200, "PATCH": 200, "POST": 200, "DELETE": 204}


@pytest.fixture
def article() -> Article:
    return Article.objects.create(title="first", author=Author.objects.create(name="a"))


def send(client, method, path, headers=None, title="edited", **extra):
    return client.generic(
        method,
        path,
        json.dumps({"title": title}),
        content_type="application/json",
        headers=headers or {},
        **extra,
    )


def current_tag(client, path):
    response = client.get(path)
    assert response.status_code == 200
    return response["ETag"]


def stored(pk):
    return Article.objects.filter(pk=pk).values_list("title", flat=True).first()


def weak(tag):
    return f"W/{tag}"


# (header form, headers built from the current tag, passes)
FORMS = [
    ("no precondition", lambda tag: {}, True),
    ("If-Match: current", lambda tag: {"if-match": tag}, True),
    ("If-Match: *", lambda tag: {"if-match": "*"}, True),
    ("If-Match: a list holding current", lambda tag: {"if-match": f'"old", {tag}'}, True),
    ("If-Match: stale", lambda tag: {"if-match": '"stale"'}, False),
    ("If-Match: current, but weak", lambda tag: {"if-match": weak(tag)}, False),
    ("If-Match: malformed", lambda tag: {"if-match": "garbage"}, False),
    ("If-None-Match: *", lambda tag: {"if-none-match": "*"}, False),
    ("If-None-Match: current", lambda tag: {"if-none-match": tag}, False),
    ("If-None-Match: stale", lambda tag: {"if-none-match": '"stale"'}, True),
    (
        "If-Unmodified-Since: later",
        lambda tag: {"if-unmodified-since": "Fri, 01 Jan 2100 00:00:00 GMT"},
        True,
    ),
    (
        "If-Unmodified-Since: earlier",
        lambda tag: {"if-unmodified-since": "Sun, 06 Nov 1994 08:49:37 GMT"},
        False,
    ),
    (
        "If-Match: current wins over If-Unmodified-Since: earlier",
        lambda tag: {"if-match": tag, "if-unmodified-since": "Sun, 06 Nov 1994 08:49:37 GMT"},
        True,
    ),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("form", "headers", "passes"), FORMS, ids=[f[0] for f in FORMS])
def test_an_existing_object(client, article, method, form, headers, passes):
    path = f"/w/articles/{article.pk}/"
    age_stamps()  # a settled Last-Modified, which If-Unmodified-Since is evaluated against
    tag = current_tag(client, path)
    response = send(client, method, path, headers(tag))
    if not passes:
        assert response.status_code == 412, response.content
        assert response["ETag"] == tag  # the current one, to merge against
        assert stored(article.pk) == "first"  # nothing written
        return
    assert response.status_code == SUCCESS[method], response.content
    if method == "DELETE":
        assert stored(article.pk) is None
        assert "ETag" not in response
        return
    assert stored(article.pk) == ("first!" if method == "POST" else "edited")
    if form == "no precondition":
        # Nothing proves which write a tag derived now would be of (Django's rule).
        assert "ETag" not in response
        return
    # The new tag, the one a GET now sends: the client's next If-Match.
    assert response["ETag"] != tag
    assert response["ETag"] == current_tag(client, path)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "headers",
    [{"if-match": '"x"'}, {"if-match": "*"}, {}, {"if-unmodified-since": "Fri, 01 Jan 2100 "}],
    ids=["If-Match: a tag", "If-Match: *", "no precondition", "If-Unmodified-Since"],
)
def test_a_missing_object(client, db, method, headers):
    """If-Match asks to change what exists: 404. Otherwise the view decides (its PUT creates)."""
    response = send(client, method, "/w/articles/999999/", headers)
    if method == "PUT" and "if-match" not in headers:
        assert response.status_code == 201
        assert stored(999999) == "edited"
        return
    assert response.status_code == 404
    assert not Article.objects.exists()


def test_if_none_match_star_creates_only_what_is_absent(client, db):
    path = "/w/articles/4242/"
    created = send(client, "PUT", path, {"if-none-match": "*"}, title="new")
    assert created.status_code == 201
    assert stored(4242) == "new"
    assert created["ETag"] == current_tag(client, path)
    again = send(client, "PUT", path, {"if-none-match": "*"}, title="overwrite")
    assert again.status_code == 412
    assert stored(4242) == "new"


def test_created_meanwhile_is_412_and_nothing_of_the_loser_is_stored(client, db, monkeypatch):
    real_title = write_views._title

    def another_request_creates_it_first(request):
        author = Author.objects.create(name="other")
        Article.objects.create(pk=4243, title="the winner's", author=author)
        return real_title(request)

    monkeypatch.setattr(write_views, "_title", another_request_creates_it_first)
    response = send(client, "PUT", "/w/articles/4243/", {"if-none-match": "*"}, title="mine")
    assert response.status_code == 412
    assert b"created the resource" in response.content
    assert stored(4243) != "mine"


@pytest.mark.parametrize("method", METHODS)
def test_changed_meanwhile_is_412_with_the_winners_tag(client, article, method, monkeypatch):
    path = f"/w/articles/{article.pk}/"
    tag = current_tag(client, path)
    before_claim(
        monkeypatch, lambda row: Article.objects.filter(pk=row.pk).update(title="the winner's")
    )
    response = send(client, method, path, {"if-match": tag}, title="mine")
    monkeypatch.undo()
    assert response.status_code == 412
    assert b"another request changed the resource" in response.content
    assert stored(article.pk) == "the winner's"
    assert response["ETag"] == current_tag(client, path) != tag


@pytest.mark.parametrize("method", METHODS)
def test_deleted_meanwhile_is_412_without_a_tag(client, article, method, monkeypatch):
    path = f"/w/articles/{article.pk}/"
    tag = current_tag(client, path)
    before_claim(monkeypatch, lambda row: Article.objects.filter(pk=row.pk).delete())
    response = send(client, method, path, {"if-match": tag})
    assert response.status_code == 412
    assert "ETag" not in response
    assert not Article.objects.filter(pk=article.pk).exists()


def test_a_refused_edit_leaves_the_tag_valid_for_the_retry(client, article):
    path = f"/w/articles/{article.pk}/"
    tag = current_tag(client, path)
    refused = send(client, "PUT", f"{path}?status=400", {"if-match": tag})
    assert refused.status_code == 400
    assert "ETag" not in refused
    retried = send(client, "PUT", path, {"if-match": tag})
    assert retried.status_code == 200
    assert stored(article.pk) == "edited"


def test_a_view_that_fails_after_saving_writes_nothing(client, article):
    path = f"/w/articles/{article.pk}/"
    tag = current_tag(client, path)
    client.raise_request_exception = False
    failed = send(client, "PUT", f"{path}?raise=1", {"if-match": tag})
    assert failed.status_code == 500
    assert stored(article.pk) == "first"
    assert current_tag(client, path) == tag


def test_a_write_to_related_rows_only_still_moves_the_version(client, article):
    """Whatever the view writes, no one holding the old tag may follow."""
    path = f"/w/comment/articles/{article.pk}/"
    tag = current_tag(client, path)
    assert send(client, "POST", path, {"if-match": tag}).status_code == 201
    assert send(client, "POST", path, {"if-match": tag}).status_code == 412
    assert article.comments.count() == 1


def test_required_precondition_is_428_with_what_to_send(client, article):
    path = f"/w/required/articles/{article.pk}/"
    for method in METHODS:
        refused = client.generic(method, path, "title=x")  # a form's POST, say
        assert refused.status_code == 428
        assert refused["Content-Type"] == "text/plain; charset=utf-8"
        assert b"If-Match" in refused.content
        # A JSON client gets problem details (RFC 9457).
        problem = send(client, method, path)
        assert problem.status_code == 428
        assert problem["Content-Type"] == "application/problem+json"
        assert json.loads(problem.content)["status"] == 428
    assert stored(article.pk) == "first"
    assert client.get(path).status_code == 200  # reads need nothing
    assert send(client, "PUT", path, {"if-match": current_tag(client, path)}).status_code == 200


def test_the_setting_requires_preconditions_everywhere(client, article):
    path = f"/w/articles/{article.pk}/"
    with override_settings(CONDITIONAL_REQUIRE_PRECONDITION=True):
        assert send(client, "PUT", path).status_code == 428
        assert send(client, "PUT", path, {"if-match": current_tag(client, path)}).status_code == 200


def test_a_412_speaks_problem_details_to_json_clients(client, article):
    path = f"/w/articles/{article.pk}/"
    response = send(client, "PUT", path, {"if-match": '"stale"', "accept": "application/json"})
    assert response.status_code == 412
    assert response["Content-Type"] == "application/problem+json"
    problem = json.loads(response.content)
    assert problem["title"] == "Precondition Failed"
    assert "If-Match" in problem["detail"]


def test_a_model_without_a_version_is_checked_again_under_a_row_lock(client, db):
    note = Note.objects.create(text="first")
    path = f"/w/notes/{note.pk}/"
    tag = current_tag(client, path)
    assert send(client, "PUT", path, {"if-match": '"stale"'}).status_code == 412
    done = send(client, "PUT", path, {"if-match": tag}, title="second")
    assert done.status_code == 200
    assert "ETag" not in done  # no version to prove a later tag is this write's
    assert Note.objects.get().text == "second"
    assert send(client, "PUT", path, {"if-match": tag}, title="third").status_code == 412


async def test_async_views_write_atomically_too(async_client, article):
    from asgiref.sync import sync_to_async

    path = f"/w/async/articles/{article.pk}/"
    tag = (await async_client.get(path))["ETag"]

    async def put(headers):
        return await async_client.put(
            path, json.dumps({"title": "async"}), content_type="application/json", headers=headers
        )

    assert (await put({"if-match": '"stale"'})).status_code == 412
    done = await put({"if-match": tag})
    assert done.status_code == 200
    assert await sync_to_async(stored)(article.pk) == "async"
    assert (await put({"if-match": tag})).status_code == 412


def test_require_precondition_needs_an_object():
    from django_conditional.decorators import conditional

    with pytest.raises(TypeError, match="object="):
        conditional(depends_on=[Note], require_precondition=True)
