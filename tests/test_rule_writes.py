"""Rules that require preconditions on writes: 428, 412 from the middleware, atomic writes."""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_conditional.models import RuleCounter
from django_conditional.rules import validate_rule
from tests import rule_views
from tests.races import before_claim
from tests.rule_factory import make_rule
from tests.testapp.models import Article, Author, Note

pytestmark = [pytest.mark.urls("tests.rule_views"), pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _debug_header():
    rule_views.calls.clear()
    with override_settings(CONDITIONAL_DEBUG_HEADER=True):
        yield


@pytest.fixture
def article():
    return Article.objects.create(title="first", author=Author.objects.create(name="a"))


@pytest.fixture
def guarding_rule(db):
    return make_rule(
        "article edits",
        url_names="r:article",
        object_model="testapp.Article",
        object_field="pk",
        object_kwarg="pk",
        audience="everyone",
        require_precondition=True,
    )


def put(client, path, body, **headers):
    return client.put(path, body, content_type="text/plain", headers=headers)


def test_a_write_without_if_match_is_428(client, article, guarding_rule):
    path = f"/r/articles/{article.pk}/"
    refused = put(client, path, "mine")
    assert refused.status_code == 428
    assert b"If-Match" in refused.content
    assert "428" in refused["X-Conditional"]
    assert client.delete(path).status_code == 428
    assert Article.objects.get(pk=article.pk).title == "first"
    assert rule_views.calls == []  # the view never ran


def test_stale_is_412_before_the_view_and_current_is_written(client, article, guarding_rule):
    path = f"/r/articles/{article.pk}/"
    tag = client.get(path)["ETag"]
    assert not tag.startswith("W/")  # an object rule's automatic tag is strong
    stale = put(client, path, "lost", **{"If-Match": '"stale"'})
    assert stale.status_code == 412
    assert stale["ETag"] == tag
    rule_views.calls.clear()
    done = put(client, path, "won", **{"If-Match": tag})
    assert done.status_code == 200
    assert rule_views.calls == [path]
    assert done["ETag"] == client.get(path)["ETag"] != tag
    assert put(client, path, "late", **{"If-Match": tag}).status_code == 412
    assert Article.objects.get(pk=article.pk).title == "won"


def test_a_write_that_lost_the_race_writes_nothing(client, article, guarding_rule, monkeypatch):
    path = f"/r/articles/{article.pk}/"
    tag = client.get(path)["ETag"]
    before_claim(
        monkeypatch, lambda row: Article.objects.filter(pk=row.pk).update(title="the winner's")
    )
    lost = put(client, path, "mine", **{"If-Match": tag})
    assert lost.status_code == 412
    assert Article.objects.get(pk=article.pk).title == "the winner's"


def test_delete_with_the_tag(client, article, guarding_rule):
    path = f"/r/articles/{article.pk}/"
    tag = client.get(path)["ETag"]
    assert client.delete(path, headers={"If-Match": '"old"'}).status_code == 412
    assert client.delete(path, headers={"If-Match": tag}).status_code == 204
    assert not Article.objects.exists()
    assert client.delete(path, headers={"If-Match": tag}).status_code == 404


def test_412s_and_428s_are_counted(client, article, guarding_rule):
    from django_conditional import rule_counts

    path = f"/r/articles/{article.pk}/"
    put(client, path, "x")
    put(client, path, "x", **{"If-Match": '"stale"'})
    rule_counts.flush()
    assert RuleCounter.objects.get(rule=guarding_rule).failed == 2


def test_rules_that_do_not_guard_writes_leave_them_alone(client, article):
    make_rule(
        "reads only",
        url_names="r:article",
        object_model="testapp.Article",
        object_field="pk",
        object_kwarg="pk",
        audience="everyone",
    )
    path = f"/r/articles/{article.pk}/"
    assert client.get(path)["ETag"]
    assert put(client, path, "mine").status_code == 200
    # Without the box ticked, a write's If-Match is the view's business (this one ignores it).
    assert put(client, path, "again", **{"If-Match": '"stale"'}).status_code == 200


def test_other_pages_are_untouched(client, guarding_rule):
    Note.objects.create(text="n")
    assert client.post("/r/plain/").status_code == 200


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"object_model": None, "object_field": "", "object_kwarg": ""}, "choose the object"),
        ({"tag_strength": "weak"}, "a weak tag never matches"),
    ],
)
def test_the_rule_form_says_what_a_guarding_rule_needs(fields, message):
    values = {
        "url_names": "r:article",
        "path_patterns": "",
        "methods": "GET,HEAD",
        "audience": "everyone",
        "shared_caches": "",
        "s_maxage": None,
        "vary": "",
        "object_model": Article,
        "object_model_label": "testapp.article",
        "object_field": "pk",
        "object_kwarg": "pk",
        "tag_strength": "auto",
        "require_precondition": True,
    }
    values |= fields
    if fields.get("object_model", Article) is None:
        values["object_model_label"] = None
    problems = validate_rule(**values)
    assert message in " ".join(problems["require_precondition"])
    assert not validate_rule(**{**values, "require_precondition": False}).get(
        "require_precondition"
    )


async def test_the_async_stack_guards_writes_too(async_client, article, guarding_rule):
    from asgiref.sync import sync_to_async

    path = f"/r/articles/{article.pk}/"
    tag = (await async_client.get(path))["ETag"]

    async def put_async(body, **headers):
        return await async_client.put(path, body, content_type="text/plain", headers=headers)

    assert (await put_async("x")).status_code == 428
    assert (await put_async("x", **{"If-Match": '"stale"'})).status_code == 412
    assert (await put_async("async", **{"If-Match": tag})).status_code == 200
    assert (await sync_to_async(Article.objects.get)(pk=article.pk)).title == "async"
    assert (await put_async("late", **{"If-Match": tag})).status_code == 412
