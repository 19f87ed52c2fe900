"""The rules' system checks: the middleware's place (E006, W010-W013), stored rules (W014-W017)."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.test import override_settings

from django_conditional.middleware import ConditionalRulesMiddleware
from django_conditional.models import ConditionalRule
from django_conditional.rule_checks import (
    RULES_MIDDLEWARE,
    check_rules,
    check_rules_middleware_order,
    middleware_positions,
)
from testproject.demo.models import Article, Author

SECURITY = "django.middleware.security.SecurityMiddleware"
SESSION = "django.contrib.sessions.middleware.SessionMiddleware"
COMMON = "django.middleware.common.CommonMiddleware"
AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"
LOCALE = "django.middleware.locale.LocaleMiddleware"
GZIP = "django.middleware.gzip.GZipMiddleware"
CONDITIONAL_GET = "django.middleware.http.ConditionalGetMiddleware"
RULES = RULES_MIDDLEWARE


class OwnRules(ConditionalRulesMiddleware):
    """A project's subclass: checked as the rules middleware."""


class OwnSessions(SessionMiddleware):
    """A project's subclass: counts as SessionMiddleware."""


OWN_RULES = f"{__name__}.OwnRules"
OWN_SESSIONS = f"{__name__}.OwnSessions"


def ids(messages: list[Any]) -> list[str]:
    return [message.id.removeprefix("django_conditional.") for message in messages]


# --- Where the middleware sits -----------------------------------------------------------


@pytest.mark.parametrize(
    ("middleware", "expected"),
    [
        pytest.param(None, [], id="demo-settings"),
        pytest.param([SESSION, COMMON, AUTH, RULES], [], id="sessions-auth-common-first"),
        pytest.param([COMMON, LOCALE, GZIP], [], id="rules-not-installed"),
        pytest.param([RULES, SESSION, AUTH], ["E006", "E006"], id="rules-above-sessions-and-auth"),
        pytest.param([SESSION, RULES, AUTH], ["E006"], id="rules-above-auth"),
        pytest.param([AUTH, RULES], ["E006"], id="no-sessions"),
        pytest.param([SESSION, RULES], ["E006"], id="no-auth"),
        pytest.param([SESSION, AUTH, RULES, LOCALE], ["W010"], id="locale-below"),
        pytest.param([SESSION, LOCALE, AUTH, RULES], [], id="locale-above"),
        pytest.param([SESSION, AUTH, RULES, GZIP], ["W011"], id="gzip-below"),
        pytest.param([GZIP, SESSION, AUTH, RULES], [], id="gzip-above"),
        pytest.param([SESSION, AUTH, RULES, COMMON], ["W012"], id="common-below"),
        pytest.param([SESSION, AUTH, RULES, CONDITIONAL_GET], ["W013"], id="conditional-get-below"),
        pytest.param([CONDITIONAL_GET, SESSION, AUTH, RULES], [], id="conditional-get-above"),
        pytest.param([OWN_RULES, SESSION, AUTH], ["E006", "E006"], id="rules-subclass"),
        pytest.param([OWN_SESSIONS, AUTH, RULES], [], id="sessions-subclass"),
        pytest.param(
            [SESSION, AUTH, "nowhere.Middleware", RULES], [], id="entry-that-does-not-import"
        ),
        pytest.param(
            [RULES, SECURITY, GZIP, LOCALE, COMMON, CONDITIONAL_GET, SESSION, AUTH],
            ["E006", "E006", "W010", "W011", "W012", "W013"],
            id="everything-below",
        ),
    ],
)
def test_middleware_order(middleware, expected):
    with override_settings(MIDDLEWARE=middleware or settings.MIDDLEWARE):
        assert ids(check_rules_middleware_order()) == expected


def test_e006_names_both_entries_and_where_they_are():
    with override_settings(MIDDLEWARE=[SECURITY, RULES, SESSION, AUTH]):
        [sessions, auth] = check_rules_middleware_order()
    assert sessions.msg.startswith(
        f"'{RULES}' (MIDDLEWARE[1]) comes before '{SESSION}' (MIDDLEWARE[2]): "
        "the rules cannot tell users apart"
    )
    assert auth.msg.startswith(f"'{RULES}' (MIDDLEWARE[1]) comes before '{AUTH}' (MIDDLEWARE[3])")
    assert sessions.hint == (
        f"Put '{RULES}' after SessionMiddleware and AuthenticationMiddleware; the end of "
        "MIDDLEWARE is the right place."
    )


def test_e006_missing_middleware_says_to_add_it():
    with override_settings(MIDDLEWARE=[SESSION, OWN_RULES]):
        [message] = check_rules_middleware_order()
    assert message.msg.startswith(f"'{OWN_RULES}' is in MIDDLEWARE but '{AUTH}' is not")
    assert message.hint.startswith(f"Add '{AUTH}' to MIDDLEWARE.")


@pytest.mark.parametrize(
    ("below", "check_id", "said"),
    [
        pytest.param(LOCALE, "W010", "activates the request's language", id="w010-locale"),
        pytest.param(GZIP, "W011", "compresses the body", id="w011-gzip"),
        pytest.param(COMMON, "W012", "APPEND_SLASH", id="w012-common"),
        pytest.param(CONDITIONAL_GET, "W013", "hashes every rendered body", id="w013-cond-get"),
    ],
)
def test_w010_to_w013_name_the_middleware_and_say_to_move_it_above(below, check_id, said):
    with override_settings(MIDDLEWARE=[SESSION, AUTH, RULES, below]):
        [message] = check_rules_middleware_order()
    assert message.id == f"django_conditional.{check_id}"
    assert message.msg.startswith(
        f"'{below}' (MIDDLEWARE[3]) comes after '{RULES}' (MIDDLEWARE[2])"
    )
    assert said in message.msg
    assert "above the rules middleware (earlier in MIDDLEWARE)" in message.hint


@pytest.mark.parametrize(
    ("middleware", "target", "expected"),
    [
        pytest.param([SESSION, RULES], RULES, [1], id="dotted-path"),
        pytest.param([OWN_RULES, RULES], RULES, [0, 1], id="subclass"),
        pytest.param(["nowhere.Middleware"], RULES, [], id="does-not-import"),
        pytest.param(["nowhere.Middleware"], "nowhere.Middleware", [0], id="path-of-no-class"),
    ],
)
def test_middleware_positions(middleware, target, expected):
    assert middleware_positions(middleware, target) == expected


def test_manage_py_check_reports_the_middleware_order():
    out = StringIO()
    with override_settings(MIDDLEWARE=[*settings.MIDDLEWARE, GZIP]):
        call_command("check", stdout=out, stderr=out)
    assert "django_conditional.W011" in out.getvalue()


def test_manage_py_check_fails_on_e006():
    with (
        override_settings(MIDDLEWARE=[RULES, *(m for m in settings.MIDDLEWARE if m != RULES)]),
        pytest.raises(SystemCheckError, match=r"django_conditional\.E006"),
    ):
        call_command("check")


def test_w002_covers_stamps_in_a_per_process_cache_with_the_rules_middleware():
    # No separate rules check (W018): W002 already says it, rules or not.
    caches = {
        **settings.CACHES,
        "stamps": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    out = StringIO()
    with override_settings(CACHES=caches, CONDITIONAL_STAMP_CACHE="stamps"):
        call_command("check", stdout=out, stderr=out)
    assert out.getvalue().count("django_conditional.W002") == 1


# --- The stored rules --------------------------------------------------------------------

VALID: dict[str, Any] = {
    "url_names": "demo:plain-article",
    "object": (Article, "slug", "slug"),
    "depends_on": [Author],
}


def make_rule(name: str = "Plain articles", **fields: Any) -> ConditionalRule:
    """A rule like seed_demo's (``VALID``), with ``fields`` changed."""
    values = {**VALID, **fields}
    depends_on = values.pop("depends_on")
    found = values.pop("object")
    if found is not None:
        model, field, kwarg = found
        model_type = model if isinstance(model, ContentType) else None
        values["object_model"] = model_type or ContentType.objects.get_for_model(model)
        values["object_field"], values["object_kwarg"] = field, kwarg
    rule = ConditionalRule.objects.create(name=name, **values)
    rule.depends_on.set(
        [
            model if isinstance(model, ContentType) else ContentType.objects.get_for_model(model)
            for model in depends_on
        ]
    )
    return rule


def gone() -> ContentType:
    """The content type of a model whose app was removed."""
    return ContentType.objects.create(app_label="gone", model="vanished")


def rule_messages() -> list[Any]:
    return check_rules(databases=["default"])


@pytest.mark.django_db
def test_a_valid_rule_passes():
    make_rule()
    make_rule("By path", url_names="", path_patterns="/plain/authors/", object=None)
    assert rule_messages() == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"url_names": "demo:plain-artcle"}, ["W014"], id="w014-name-typo"),
        pytest.param({"depends_on": [Author, "gone"]}, ["W015"], id="w015-depends-on-gone"),
        pytest.param({"object": ("gone", "slug", "slug")}, ["W015"], id="w015-object-model-gone"),
        pytest.param({"object": (Article, "slg", "slug")}, ["W015"], id="w015-field-missing"),
        pytest.param({"object": (Article, "title", "slug")}, ["W015"], id="w015-field-not-unique"),
        pytest.param({"object": (Article, "slug", "pk")}, ["W015"], id="w015-kwarg-in-no-url"),
        pytest.param(
            {"url_names": "demo:plain-article\ndemo:article-detail"}, ["W016"], id="w016-protected"
        ),
        pytest.param({"methods": "GET,POST"}, ["W017"], id="w017-invalid"),
        pytest.param(
            {"url_names": "demo:plain-artcle\ndemo:about", "methods": "PUT"},
            ["W014", "W016", "W017"],
            id="several",
        ),
        pytest.param(
            {"url_names": "demo:plain-artcle", "methods": "PUT", "enabled": False},
            [],
            id="disabled-rule",
        ),
        pytest.param({"object": (Article, "pk", "slug")}, [], id="pk-is-unique"),
    ],
)
@pytest.mark.django_db
def test_stored_rule_checks(fields, expected):
    resolved = dict(fields)
    if "depends_on" in resolved:
        resolved["depends_on"] = [gone() if m == "gone" else m for m in resolved["depends_on"]]
    if resolved.get("object") and resolved["object"][0] == "gone":
        resolved["object"] = (gone(), *resolved["object"][1:])
    make_rule(**resolved)
    assert ids(rule_messages()) == expected


@pytest.mark.django_db
def test_w014_names_the_rule_and_the_pattern_and_hints_the_close_match():
    make_rule(url_names="demo:plain-artcle")
    [message] = rule_messages()
    assert message.msg == (
        "Conditional rule 'Plain articles' names URL 'demo:plain-artcle', which matches no "
        "URL name in the URLconf: the rule covers no page by it."
    )
    assert (
        message.hint == "Did you mean 'demo:plain-article'? Fix the rule's URL names in the admin."
    )


@pytest.mark.parametrize(
    ("fields", "said", "hint"),
    [
        pytest.param(
            {"depends_on": ["gone"]},
            "depends on gone.vanished, which is no longer an installed model: the rule is "
            "not applied",
            "Remove it from the rule's depends_on",
            id="depends-on",
        ),
        pytest.param(
            {"object": ("gone", "slug", "slug")},
            "looks its object up in gone.vanished, which is no longer an installed model",
            "Choose an installed model",
            id="object-model",
        ),
        pytest.param(
            {"object": (Article, "slg", "slug")},
            "looks its object up by demo.Article.slg, which does not exist",
            "Choose a unique field of demo.Article: pk, id, slug.",
            id="object-field-missing",
        ),
        pytest.param(
            {"object": (Article, "title", "slug")},
            "looks its object up by demo.Article.title, which is not unique",
            "Choose a unique field of demo.Article: pk, id, slug.",
            id="object-field-not-unique",
        ),
        pytest.param(
            {"object": (Article, "slug", "pk")},
            "reads its object from URL argument 'pk', which none of the URLs it covers has "
            "(/plain/articles/x/ (demo:plain-article))",
            "Use one of their URL arguments: slug.",
            id="object-kwarg",
        ),
    ],
)
@pytest.mark.django_db
def test_w015_says_what_is_gone_and_what_to_choose(fields, said, hint):
    resolved = dict(fields)
    if resolved.get("depends_on") == ["gone"]:
        resolved["depends_on"] = [gone()]
    if resolved.get("object") and resolved["object"][0] == "gone":
        resolved["object"] = (gone(), *resolved["object"][1:])
    make_rule(**resolved)
    [message] = rule_messages()
    assert message.id == "django_conditional.W015"
    assert said in message.msg
    assert message.hint.startswith(hint)


@pytest.mark.django_db
def test_w016_lists_the_protected_views_and_says_they_pass_through():
    make_rule(url_names="demo:plain-article\ndemo:article-detail", object=None, depends_on=[])
    [message] = rule_messages()
    assert message.msg == (
        "Conditional rule 'Plain articles' covers views no rule may answer; the middleware "
        "passes them through at run time: 'demo:article-detail' covers /articles/x/ "
        "(demo:article-detail): the view has its own conditional decorator, which wins over "
        "rules."
    )


@pytest.mark.django_db
def test_w017_says_the_rule_is_not_applied_and_why():
    make_rule(methods="GET,POST")
    [message] = rule_messages()
    assert message.msg == (
        "Conditional rule 'Plain articles' no longer validates, so it is not applied (the "
        "middleware skips it): methods: Methods POST cannot be answered by a rule; choose GET "
        "and HEAD."
    )


@pytest.mark.django_db
def test_stored_rules_are_checked_only_for_the_default_database(monkeypatch):
    make_rule(methods="PUT")
    assert check_rules(databases=None) == []
    assert check_rules(databases=["other"]) == []
    monkeypatch.setattr(connection.introspection, "table_names", lambda *args, **kwargs: [])
    assert rule_messages() == []


@pytest.mark.django_db
def test_check_database_reports_stored_rules():
    make_rule(url_names="demo:plain-artcle")
    out = StringIO()
    call_command("check", "--database", "default", stdout=out, stderr=out)
    assert "django_conditional.W014" in out.getvalue()
    assert "'demo:plain-artcle'" in out.getvalue()
