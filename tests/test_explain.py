"""``explain`` and ``manage.py conditional_explain``: what the rules do with one request."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import override_settings

from django_conditional.explain import ExplainError, Verdict, build_request, explain_url
from django_conditional.models import ConditionalRule
from testproject.demo.factories import ArticleFactory, AuthorFactory
from tests.rule_factory import make_rule

pytestmark = pytest.mark.django_db

AUTHORS = "Plain author index"
ARTICLES = "Plain article pages"
ME = "Plain greeting, per user"


@pytest.fixture
def plain_rules() -> None:
    """The demo's three rules for its plain pages (as seed_demo creates them)."""
    make_rule(
        ARTICLES,
        url_names="demo:plain-article",
        object_model="demo.Article",
        object_field="slug",
        object_kwarg="slug",
        depends_on=("demo.Author", "demo.Tag", "demo.Comment"),
        audience="everyone",
        max_age=0,
        must_revalidate=True,
    )
    make_rule(
        AUTHORS,
        path_patterns="/plain/authors/",
        depends_on=("demo.Author", "demo.Article"),
        max_age=0,
        must_revalidate=True,
    )
    make_rule(ME, path_patterns="/plain/me/", depends_on=("auth.User",), audience="per_user")


@pytest.fixture
def alice() -> Any:
    return get_user_model().objects.create_user("alice", password="secret")


def test_a_matching_rule_gives_the_validator_the_middleware_sends(client, plain_rules):
    AuthorFactory.create()
    explanation = explain_url("http://127.0.0.1:8000/plain/authors/")
    assert explanation.resolved
    assert explanation.url_name == "demo:plain-authors"
    assert explanation.protected is None
    assert explanation.rule == AUTHORS
    assert explanation.verdict_of(AUTHORS).verdict is Verdict.APPLIES
    assert "path pattern '/plain/authors/'" in explanation.verdict_of(AUTHORS).reason
    assert explanation.passes is None
    assert explanation.refused is False
    assert explanation.depends_on == ("demo.Article", "demo.Author")
    assert set(explanation.stamps) >= {"demo_article", "demo_author"}
    assert explanation.etag is not None
    assert explanation.etag.startswith('W/"')
    assert explanation.revalidation is not None
    assert (explanation.revalidation.status, explanation.revalidation.asked) == (304, False)

    response = client.get("/plain/authors/")
    assert response.status_code == 200
    assert response.headers["ETag"] == explanation.etag
    revalidated = client.get("/plain/authors/", headers={"if-none-match": explanation.etag})
    assert revalidated.status_code == 304


def test_a_rule_by_url_name_looks_up_its_object(client, plain_rules):
    article = ArticleFactory.create(slug="hello")
    explanation = explain_url(f"/plain/articles/{article.slug}/")
    assert explanation.rule == ARTICLES
    assert explanation.kwargs == {"slug": "hello"}
    assert "URL name 'demo:plain-article'" in explanation.verdict_of(ARTICLES).reason
    assert explanation.object_lookup == "demo.Article with slug = 'hello' (URL argument 'slug')"
    assert explanation.etag is not None
    assert not explanation.etag.startswith("W/")  # an object: a strong tag
    assert client.get("/plain/articles/hello/").headers["ETag"] == explanation.etag


def test_a_missing_object_passes_to_the_view(plain_rules):
    explanation = explain_url("/plain/articles/no-such-article/")
    assert explanation.rule == ARTICLES
    assert explanation.passes is not None
    assert "not found" in explanation.passes
    assert explanation.etag is None


def test_a_url_no_rule_matches_says_why_for_each_rule(plain_rules):
    explanation = explain_url("/healthz")
    assert explanation.resolved
    assert explanation.rule is None
    verdicts = {verdict.name: verdict for verdict in explanation.verdicts}
    assert {verdict.verdict for verdict in verdicts.values()} == {Verdict.NO_MATCH}
    assert "URL names 'demo:plain-article'" in verdicts[ARTICLES].reason
    assert "path patterns '/plain/authors/'" in verdicts[AUTHORS].reason
    assert "path patterns '/plain/me/'" in verdicts[ME].reason
    assert explanation.revalidation is None


def test_a_path_that_does_not_resolve(plain_rules):
    make_rule("Everything under plain", path_patterns="/plain/**")
    explanation = explain_url("/plain/nowhere/at/all/")
    assert not explanation.resolved
    assert explanation.verdict_of("Everything under plain").verdict is Verdict.NO_VIEW
    assert explanation.rule is None


def test_a_decorated_view_is_left_to_itself():
    ArticleFactory.create(slug="decorated")
    make_rule("Articles by path", path_patterns="/articles/*/")
    explanation = explain_url("/articles/decorated/")
    assert explanation.protected is not None
    assert "own conditional decorator" in explanation.protected
    verdict = explanation.verdict_of("Articles by path")
    assert verdict.verdict is Verdict.PROTECTED
    assert explanation.rule is None


def test_a_disabled_rule_is_listed_as_disabled(plain_rules):
    make_rule("Switched off", path_patterns="/plain/authors/", priority=10, enabled=False)
    explanation = explain_url("/plain/authors/")
    assert explanation.verdict_of("Switched off").verdict is Verdict.DISABLED
    assert explanation.rule == AUTHORS


def test_an_invalid_rule_says_what_is_wrong(plain_rules):
    make_rule("Broken", path_patterns="/plain/authors/", priority=10, tag_strength="strong")
    explanation = explain_url("/plain/authors/")
    verdict = explanation.verdict_of("Broken")
    assert verdict.verdict is Verdict.INVALID
    assert "strong tag" in verdict.reason
    assert explanation.rule == AUTHORS


@pytest.mark.parametrize(
    ("priority", "winner", "loser"),
    [
        pytest.param(10, "Authors, preferred", AUTHORS, id="higher-priority-wins"),
        pytest.param(-10, AUTHORS, "Authors, preferred", id="lower-priority-loses"),
    ],
)
def test_priority_decides_between_matching_rules(plain_rules, priority, winner, loser):
    make_rule("Authors, preferred", path_patterns="/plain/*/", priority=priority)
    explanation = explain_url("/plain/authors/")
    assert explanation.rule == winner
    assert explanation.verdict_of(winner).verdict is Verdict.APPLIES
    outranked = explanation.verdict_of(loser)
    assert outranked.verdict is Verdict.OUTRANKED
    assert repr(winner) in outranked.reason
    names = [verdict.name for verdict in explanation.verdicts]
    assert names.index(winner) < names.index(loser)


def test_a_method_the_rule_does_not_answer(plain_rules):
    make_rule("GET only", path_patterns="/healthz", methods="GET")
    explanation = explain_url("/healthz", method="head")
    assert explanation.method == "HEAD"
    verdict = explanation.verdict_of("GET only")
    assert verdict.verdict is Verdict.WRONG_METHOD
    assert "HEAD is not among its methods (GET)" in verdict.reason
    assert explanation.rule is None


def test_a_per_user_rule_with_a_user(client, plain_rules, alice):
    anonymous = explain_url("/plain/me/")
    explanation = explain_url("/plain/me/", username="alice")
    assert explanation.user == "user 'alice'"
    assert explanation.rule == ME
    assert explanation.passes is None
    assert explanation.etag is not None
    assert explanation.etag != anonymous.etag  # each user their own tag
    assert any("private" in line for line in explanation.caching_fields)
    client.force_login(alice)
    assert client.get("/plain/me/").headers["ETag"] == explanation.etag


def test_an_anonymous_only_rule_passes_a_user_through(plain_rules, alice):
    explanation = explain_url("/plain/authors/", username="alice")
    assert explanation.rule == AUTHORS
    assert explanation.passes == "the request carries a session cookie (an anonymous-only rule)"
    assert explanation.etag is None
    assert explanation.revalidation is None
    assert any("Passes through" in line for line in explanation.lines())


def test_a_refused_page_passes_through(plain_rules):
    rule = ConditionalRule.objects.get(name=AUTHORS)
    rule.refusals.create(path="/plain/authors/", reason="it set a cookie")
    explanation = explain_url("/plain/authors/")
    assert explanation.refused is True
    assert explanation.passes is not None
    assert "must not get" in explanation.passes


@pytest.mark.parametrize(
    ("current", "status"),
    [
        pytest.param(True, 304, id="current-tag-304"),
        pytest.param(False, 200, id="stale-tag-200"),
    ],
)
def test_etag_is_evaluated_by_the_engine(
    plain_rules, django_capture_on_commit_callbacks, current, status
):
    etag = explain_url("/plain/authors/").etag
    assert etag is not None
    if not current:
        # The page changed since the client got its copy (stamps move after the commit).
        with django_capture_on_commit_callbacks(execute=True):
            AuthorFactory.create()
    explanation = explain_url("/plain/authors/", etag=etag)
    assert explanation.revalidation is not None
    assert explanation.revalidation.asked is True
    assert explanation.revalidation.status == status
    assert (explanation.etag == etag) is current


def test_headers_reach_the_request():
    request, note = build_request(
        "/plain/authors/?page=2", headers=["Accept: text/html", "X-Thing: a", "x-thing: b"]
    )
    assert note is None
    assert request.META["HTTP_ACCEPT"] == "text/html"
    assert request.META["HTTP_X_THING"] == "a, b"
    assert request.META["QUERY_STRING"] == "page=2"


@pytest.mark.parametrize(
    ("url", "host", "noted"),
    [
        pytest.param("http://127.0.0.1:8000/plain/authors/", "127.0.0.1:8000", False, id="allowed"),
        pytest.param("http://evil.example/plain/authors/", "127.0.0.1", True, id="not-allowed"),
        pytest.param("/plain/authors/", "127.0.0.1", False, id="path-only"),
    ],
)
@override_settings(ALLOWED_HOSTS=["127.0.0.1", "localhost"])
def test_the_host_is_used_only_when_allowed(url, host, noted):
    request, note = build_request(url)
    assert request.get_host() == host
    assert (note is not None) is noted


@override_settings(ALLOWED_HOSTS=["*"])
def test_a_wildcard_falls_back_to_testserver():
    request, _note = build_request("/plain/authors/")
    assert request.get_host() == "testserver"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"url": "plain/authors/"}, "not a URL or a path", id="no-slash"),
        pytest.param({"url": "ftp://127.0.0.1/x"}, "not an http or https URL", id="scheme"),
        pytest.param({"url": "http:///x"}, "has no host", id="no-host"),
        pytest.param({"url": "/a b/"}, "is not a URL", id="space"),
        pytest.param({"url": "http://127.0.0.1:port/"}, "is not a URL", id="bad-port"),
        pytest.param({"url": ""}, "is not a URL", id="empty"),
        pytest.param({"url": "/", "method": "POST"}, "'POST' is not one a rule answers", id="post"),
        pytest.param({"url": "/", "username": "nobody"}, "'nobody'", id="unknown-user"),
        pytest.param({"url": "/", "headers": ["Accept text/html"]}, "'Name: value'", id="header"),
        pytest.param({"url": "/", "etag": " "}, "--etag is empty", id="empty-etag"),
    ],
)
def test_bad_input_is_an_error_naming_the_fix(kwargs, message):
    url = kwargs.pop("url")
    with pytest.raises(ExplainError, match=message):
        explain_url(url, **kwargs)


def test_the_command_prints_the_explanation(plain_rules):
    out = StringIO()
    call_command("conditional_explain", "http://127.0.0.1:8000/plain/authors/", stdout=out)
    text = out.getvalue()
    etag = explain_url("/plain/authors/").etag
    assert "GET /plain/authors/ (host 127.0.0.1:8000, anonymous" in text
    assert "URL name 'demo:plain-authors'" in text
    assert f"[applies] {AUTHORS!r} (priority 0)" in text
    assert f"[no match] {ME!r}" in text
    assert f"ETag: {etag}" in text
    assert f"If-None-Match: {etag} would get 304 Not Modified" in text


def test_the_command_with_a_stale_etag(plain_rules):
    out = StringIO()
    call_command("conditional_explain", "/plain/authors/", "--etag", 'W/"stale"', stdout=out)
    assert "Revalidation: 200 OK" in out.getvalue()


def test_the_command_with_a_user_and_headers(plain_rules, alice):
    out = StringIO()
    call_command(
        "conditional_explain",
        "/plain/me/",
        "--user",
        "alice",
        "--method",
        "HEAD",
        "--header",
        "Accept: text/plain",
        stdout=out,
    )
    text = out.getvalue()
    assert "HEAD /plain/me/" in text
    assert "user 'alice'" in text
    assert f"Rule {ME!r} applies (audience per_user)" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["/", "--user", "nobody"], "No user with .* 'nobody'", id="unknown-user"),
        pytest.param(["not a url"], "is not a URL", id="bad-url"),
        pytest.param(
            ["/", "--method", "DELETE"], "'DELETE' is not one a rule answers", id="method"
        ),
    ],
)
def test_the_command_reports_bad_input_as_a_command_error(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("conditional_explain", *args, stdout=StringIO())


def test_no_rules_at_all():
    explanation = explain_url("/plain/authors/")
    assert explanation.verdicts == []
    assert "There are no conditional rules." in explanation.lines()


def test_a_stamp_store_that_does_not_answer(plain_rules, monkeypatch):
    from django_conditional import derivation
    from django_conditional.stamp_errors import StampsUnavailable

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StampsUnavailable("connection refused")

    monkeypatch.setattr(derivation, "read_stamps", down)
    explanation = explain_url("/plain/authors/", etag='W/"old"')
    assert explanation.rule == AUTHORS
    assert explanation.etag is None
    assert explanation.no_validator is not None
    assert "the stamp store does not answer (connection refused)" in explanation.no_validator
    assert "served without validators" in explanation.no_validator
    assert explanation.revalidation is not None
    assert explanation.revalidation.status == 200


def test_rules_that_cannot_be_loaded(plain_rules, monkeypatch):
    from django_conditional import explain
    from django_conditional.stamp_errors import StampsUnavailable

    def down() -> Any:
        raise StampsUnavailable("connection refused")

    monkeypatch.setattr(explain, "load_rules", down)
    explanation = explain_url("/plain/authors/")
    assert explanation.rules_unavailable is not None
    assert "leaves every request to its view" in explanation.rules_unavailable
    assert explanation.verdict_of(AUTHORS).verdict is Verdict.NOT_LOADED
    assert explanation.rule is None
