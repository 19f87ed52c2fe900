"""ConditionalModelMixin with DRF's own test client: a viewset and a generic view."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.testapp.models import Article, Author

pytestmark = [pytest.mark.urls("tests.testapp.urls"), pytest.mark.django_db(transaction=True)]


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def article():
    return Article.objects.create(title="first", author=Author.objects.create(name="a"))


def detail(article, base="/drf/articles/"):
    return f"{base}{article.pk}/"


def test_retrieve_has_a_strong_etag_and_304(api, article):
    first = api.get(detail(article))
    assert first.status_code == 200
    assert first.json()["title"] == "first"
    assert not first["ETag"].startswith("W/")
    assert "Cookie" in first["Vary"]  # per user, by session
    assert "Authorization" in first["Vary"]  # or by token
    again = api.get(detail(article), HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert again["ETag"] == first["ETag"]
    Article.objects.filter(pk=article.pk).update(title="second")
    assert api.get(detail(article), HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 200


def test_the_negotiated_format_is_part_of_the_tag(api, article):
    as_json = api.get(detail(article), HTTP_ACCEPT="application/json")
    browsable = api.get(detail(article), HTTP_ACCEPT="text/html")
    assert browsable.status_code == 200
    assert as_json["ETag"] != browsable["ETag"]
    stale = api.get(detail(article), HTTP_ACCEPT="text/html", HTTP_IF_NONE_MATCH=as_json["ETag"])
    assert stale.status_code == 200


def test_list_has_an_etag_per_page_and_304(api, article):
    first = api.get("/drf/articles/")
    assert first.status_code == 200
    assert api.get("/drf/articles/", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    Article.objects.create(title="another", author=article.author)
    changed = api.get("/drf/articles/", HTTP_IF_NONE_MATCH=first["ETag"])
    assert changed.status_code == 200
    assert len(changed.json()) == 2


def test_a_missing_object_is_drfs_404(api, db):
    assert api.get("/drf/articles/999/").status_code == 404
    assert (
        api.put("/drf/articles/999/", {"title": "x"}, format="json", HTTP_IF_MATCH="*").status_code
        == 404
    )


@pytest.mark.parametrize("method", ["put", "patch"])
def test_updates_with_if_match(api, article, method):
    tag = api.get(detail(article))["ETag"]
    send = getattr(api, method)
    stale = send(detail(article), {"title": "lost"}, format="json", HTTP_IF_MATCH='"stale"')
    assert stale.status_code == 412
    assert stale["ETag"] == tag
    assert stale["Content-Type"] == "application/problem+json"
    done = send(detail(article), {"title": "won"}, format="json", HTTP_IF_MATCH=tag)
    assert done.status_code == 200
    assert done.json()["title"] == "won"
    assert done["ETag"] == api.get(detail(article))["ETag"] != tag
    again = send(detail(article), {"title": "late"}, format="json", HTTP_IF_MATCH=tag)
    assert again.status_code == 412
    assert Article.objects.get(pk=article.pk).title == "won"


def test_a_validation_error_keeps_the_tag_valid(api, article):
    tag = api.get(detail(article))["ETag"]
    invalid = api.patch(detail(article), {"title": "invalid"}, format="json", HTTP_IF_MATCH=tag)
    assert invalid.status_code == 400  # DRF's own exception handling
    assert invalid.json() == {"title": ["not this title"]}
    assert (
        api.patch(detail(article), {"title": "fine"}, format="json", HTTP_IF_MATCH=tag).status_code
        == 200
    )


def test_destroy_with_if_match(api, article):
    assert api.delete(detail(article), HTTP_IF_MATCH='"stale"').status_code == 412
    tag = api.get(detail(article))["ETag"]
    assert api.delete(detail(article), HTTP_IF_MATCH=tag).status_code == 204
    assert not Article.objects.exists()


def test_the_generic_view_requires_a_precondition(api, article):
    path = detail(article, "/drf/required/articles/")
    for method in ("put", "patch", "delete"):
        refused = getattr(api, method)(path, {"title": "x"}, format="json")
        assert refused.status_code == 428
        assert "If-Match" in refused.json()["detail"]
    first = api.get(path)
    assert "Cookie" not in first.get("Vary", "")  # public
    assert api.get(path, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    done = api.patch(path, {"title": "ok"}, format="json", HTTP_IF_MATCH=first["ETag"])
    assert done.status_code == 200
    assert Article.objects.get(pk=article.pk).title == "ok"
