"""The demo's JSON API: edits need If-Match, stale ones get 412, bad bodies a clear 400."""

from __future__ import annotations

import json

import pytest

from testproject.demo.factories import ArticleFactory
from testproject.demo.models import Article

pytestmark = pytest.mark.django_db(transaction=True)


def send(client, method, path, body=None, **headers):
    payload = "" if body is None else json.dumps(body)
    return client.generic(method, path, payload, content_type="application/json", headers=headers)


@pytest.fixture
def article():
    return ArticleFactory(title="First")


def test_the_readme_curl_session(client, article):
    path = f"/api/articles/{article.pk}/"
    first = client.get(path)
    assert first.status_code == 200
    assert json.loads(first.content)["title"] == "First"
    assert not first["ETag"].startswith("W/")  # strong: If-Match compares strongly
    assert client.get(path, headers={"if-none-match": first["ETag"]}).status_code == 304
    edited = send(client, "PATCH", path, {"title": "Edited"}, if_match=first["ETag"])
    assert edited.status_code == 200
    assert json.loads(edited.content)["title"] == "Edited"
    lost = send(client, "PATCH", path, {"title": "Lost?"}, if_match=first["ETag"])
    assert lost.status_code == 412
    assert lost["Content-Type"] == "application/problem+json"
    assert lost["ETag"] == edited["ETag"] == client.get(path)["ETag"]
    assert Article.objects.get(pk=article.pk).title == "Edited"


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_edits_without_if_match_are_428(client, article, method):
    response = send(client, method, f"/api/articles/{article.pk}/", {"title": "x", "body": "y"})
    assert response.status_code == 428
    assert "If-Match" in json.loads(response.content)["detail"]
    assert Article.objects.get(pk=article.pk).title == "First"


@pytest.mark.parametrize(
    ("method", "body", "detail"),
    [
        ("PUT", {"title": "only a title"}, "missing fields: body"),
        ("PATCH", {"title": 3}, "not strings: title"),
        ("PATCH", {"slug": "x"}, "unknown fields: slug"),
        ("PATCH", ["title"], "send an object"),
        ("PATCH", {"title": "  "}, "must not be empty"),
    ],
)
def test_bad_bodies_are_400_and_keep_the_tag_valid(client, article, method, body, detail):
    path = f"/api/articles/{article.pk}/"
    tag = client.get(path)["ETag"]
    refused = send(client, method, path, body, if_match=tag)
    assert refused.status_code == 400
    assert detail in json.loads(refused.content)["detail"]
    assert send(client, "PATCH", path, {"title": "Fixed"}, if_match=tag).status_code == 200


def test_not_json_is_400(client, article):
    path = f"/api/articles/{article.pk}/"
    response = client.generic(
        "PATCH", path, "{", content_type="application/json", headers={"if-match": "*"}
    )
    assert response.status_code == 400


def test_delete_with_the_tag_and_create_by_post(client, article):
    path = f"/api/articles/{article.pk}/"
    assert send(client, "DELETE", path, if_match='"stale"').status_code == 412
    assert send(client, "DELETE", path, if_match=client.get(path)["ETag"]).status_code == 204
    assert client.get(path).status_code == 404
    created = send(client, "POST", "/api/articles/", {"title": "New", "body": "text"})
    assert created.status_code == 201
    location = created["Location"]
    assert json.loads(client.get(location).content)["title"] == "New"
    listed = json.loads(client.get("/api/articles/").content)["articles"]
    assert [row["title"] for row in listed] == ["New"]


def test_the_unguarded_comparison_checks_then_saves(client, article):
    path = f"/api/unguarded/articles/{article.pk}/"
    tag = client.get(path)["ETag"]
    assert send(client, "PATCH", path, {"title": "A"}, if_match=tag).status_code == 200
    assert send(client, "PATCH", path, {"title": "B"}, if_match=tag).status_code == 412
