"""Rules as data: what ``validate_rule`` refuses, and what a valid row becomes."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType

from django_conditional.models import ConditionalRule
from django_conditional.rules import build_rule, load_rules, validate_rule
from testproject.demo.models import Article, Author

VALID: dict[str, Any] = {
    "url_names": "demo:plain-article",
    "path_patterns": "",
    "methods": "GET,HEAD",
    "audience": "anonymous",
    "shared_caches": "",
    "s_maxage": None,
    "vary": "",
    "object_model": None,
    "object_model_label": None,
    "object_field": "",
    "object_kwarg": "",
    "tag_strength": "auto",
}


def test_a_valid_rule_has_no_problems() -> None:
    assert validate_rule(**VALID) == {}


@pytest.mark.parametrize(
    ("changes", "field", "phrase"),
    [
        pytest.param({"url_names": "*"}, "url_names", "admin included", id="name-star"),
        pytest.param({"url_names": "a::b"}, "url_names", "empty part", id="name-empty-part"),
        pytest.param({"url_names": "", "path_patterns": ""}, "url_names", "at least", id="none"),
        pytest.param({"path_patterns": "/a/[0-9]/"}, "path_patterns", "'['", id="glob-class"),
        pytest.param({"path_patterns": "/a/?x=1"}, "path_patterns", "query", id="glob-query"),
        pytest.param({"path_patterns": "about/"}, "path_patterns", "start with", id="glob-rel"),
        pytest.param({"path_patterns": "/a**/"}, "path_patterns", "whole segment", id="glob-**"),
        pytest.param({"path_patterns": "/" + "*/" * 9}, "path_patterns", "more than", id="stars"),
        pytest.param({"path_patterns": "/ok/\n/a b/"}, "path_patterns", "line 2", id="line"),
        pytest.param({"methods": "GET,POST"}, "methods", "POST", id="post"),
        pytest.param({"methods": ""}, "methods", "GET and HEAD", id="no-method"),
        pytest.param(
            {"audience": "per_user", "shared_caches": "public"},
            "shared_caches",
            "per-user",
            id="per-user-public",
        ),
        pytest.param({"audience": "per_user", "s_maxage": 5}, "s_maxage", "shared", id="s-max"),
        pytest.param({"vary": "Cookie"}, "vary", "per user", id="vary-cookie"),
        pytest.param({"vary": "Accept, X Y"}, "vary", "not a header", id="vary-bad"),
        pytest.param({"tag_strength": "strong"}, "tag_strength", "byte-identical", id="strong"),
        pytest.param({"object_field": "slug"}, "object_model", "Choose", id="field-no-model"),
        pytest.param(
            {"object_model": Article, "object_model_label": "demo | article"},
            "object_field",
            "Name the field",
            id="model-no-field",
        ),
        pytest.param(
            {
                "object_model": Article,
                "object_model_label": "a",
                "object_field": "title",
                "object_kwarg": "slug",
            },
            "object_field",
            "not unique",
            id="not-unique",
        ),
        pytest.param(
            {
                "object_model": Article,
                "object_model_label": "a",
                "object_field": "nope",
                "object_kwarg": "slug",
            },
            "object_field",
            "has no field 'nope'",
            id="no-such-field",
        ),
        pytest.param(
            {
                "object_model": Article,
                "object_model_label": "a",
                "object_field": "slug",
                "object_kwarg": "a b",
            },
            "object_kwarg",
            "not a URL argument",
            id="bad-kwarg",
        ),
        pytest.param(
            {
                "object_model": None,
                "object_model_label": "gone | model",
                "object_field": "pk",
                "object_kwarg": "pk",
            },
            "object_model",
            "no longer an installed model",
            id="uninstalled",
        ),
    ],
)
def test_what_a_rule_may_not_say(changes: dict[str, Any], field: str, phrase: str) -> None:
    problems = validate_rule(**{**VALID, **changes})
    assert field in problems, problems
    assert any(phrase in message for message in problems[field]), problems[field]


@pytest.mark.django_db
def test_a_row_becomes_a_rule_with_its_caching_fields() -> None:
    row = ConditionalRule.objects.create(
        name="articles",
        url_names="demo:plain-article",
        object_model=ContentType.objects.get_for_model(Article),
        object_field="slug",
        object_kwarg="slug",
        audience="everyone",
        shared_caches="public",
        max_age=0,
        s_maxage=60,
        must_revalidate=True,
        stale_while_revalidate=30,
        immutable=True,
        no_cache=True,
        vary="Accept, accept",
    )
    rule = build_rule(row, [Author])
    assert rule.weak is None  # automatic: strong with an object
    assert rule.vary == ("accept",)
    assert rule.options.cache_control == {
        "max_age": 0,
        "s_maxage": 60,
        "stale_while_revalidate": 30,
        "no_cache": True,
        "must_revalidate": True,
        "immutable": True,
        "public": True,
    }
    assert list(rule.options.vary or ()) == ["accept"]
    derivation = rule.derivation(("salt",), {"slug": "x"})
    assert derivation is not None
    assert derivation.single
    assert rule.derivation(("salt",), {}) is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("audience", "cache_control", "vary"),
    [
        pytest.param("anonymous", None, ["Cookie"], id="anonymous"),
        pytest.param("per_user", {"private": True}, ["Cookie"], id="per-user"),
        pytest.param("everyone", None, None, id="everyone"),
    ],
)
def test_each_audience_says_who_may_store_a_copy(
    audience: str, cache_control: Any, vary: Any
) -> None:
    row = ConditionalRule.objects.create(name="a", path_patterns="/a/", audience=audience)
    rule = build_rule(row, [])
    assert rule.options.cache_control == cache_control
    assert (list(rule.options.vary) if rule.options.vary else None) == vary


@pytest.mark.django_db
def test_a_changed_rule_has_a_new_identity_and_an_unchanged_one_keeps_it() -> None:
    row = ConditionalRule.objects.create(name="a", path_patterns="/a/")
    before = build_rule(row, [Author]).identity
    row.notes = "Only words changed."
    assert build_rule(row, [Author]).identity == before
    row.max_age = 5
    assert build_rule(row, [Author]).identity != before
    assert build_rule(row, [Author, Article]).identity != before


@pytest.mark.django_db
def test_disabled_and_invalid_rows_are_not_loaded() -> None:
    ConditionalRule.objects.create(name="on", path_patterns="/a/")
    ConditionalRule.objects.create(name="off", path_patterns="/b/", enabled=False)
    ConditionalRule.objects.create(name="broken", path_patterns="/[c]/")
    rules = load_rules()
    assert [rule.name for rule in rules.rules] == ["on"]
    assert "broken" in rules.invalid
    assert "'['" in rules.invalid["broken"]
