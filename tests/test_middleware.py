"""The rules middleware through Django's test clients: matching, audiences, learning, reloads.

Plain views from ``tests.rule_views`` (under ``/r/``) and the demo's pages;
the rules are made with the ORM, as the admin would make them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from django_conditional import rule_counts
from django_conditional.models import ConditionalRule, RuleCounter, RuleRefusal
from django_conditional.rules import current_rules
from tests import rule_views
from tests.testapp.models import Note

# Transactions that commit: stamps move when a write commits, as in production.
pytestmark = [
    pytest.mark.urls("tests.rule_views"),
    pytest.mark.django_db(transaction=True),
]

MakeRule = Callable[..., ConditionalRule]


@pytest.fixture(autouse=True)
def _debug_header_and_calls() -> Iterator[None]:
    rule_views.calls.clear()
    with override_settings(CONDITIONAL_DEBUG_HEADER=True):
        yield


@pytest.fixture
def make_rule() -> MakeRule:
    def make(
        name: str = "notes",
        *,
        depends_on: tuple[type[Any], ...] = (Note,),
        object: tuple[type[Any], str, str] | None = None,
        **fields: Any,
    ) -> ConditionalRule:
        if object is not None:
            model, field, kwarg = object
            fields.update(
                object_model=ContentType.objects.get_for_model(model),
                object_field=field,
                object_kwarg=kwarg,
            )
        rule = ConditionalRule.objects.create(name=name, **fields)
        rule.depends_on.set(ContentType.objects.get_for_model(model) for model in depends_on)
        return rule

    return make


def revalidate(client: Any, path: str, **headers: Any) -> tuple[Any, Any]:
    """GET ``path``, then GET it again with the ETag it sent: both responses."""
    first = client.get(path, headers=headers)
    assert "ETag" in first, first.headers.get("X-Conditional")
    second = client.get(path, headers={**headers, "If-None-Match": first["ETag"]})
    return first, second


# --- Matching --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "path", "covered"),
    [
        pytest.param({"url_names": "r:plain"}, "/r/plain/", True, id="name"),
        pytest.param({"url_names": "r:plain"}, "/r/other/", False, id="name-other"),
        pytest.param({"url_names": "r:*"}, "/r/other/", True, id="namespace"),
        pytest.param({"path_patterns": "/r/plain/"}, "/r/plain/", True, id="glob-literal"),
        pytest.param({"path_patterns": "/r/plain/*/"}, "/r/plain/7/", True, id="glob-star"),
        pytest.param({"path_patterns": "/r/plain/*/"}, "/r/plain/", False, id="glob-star-empty"),
        pytest.param({"path_patterns": "/r/**"}, "/r/plain/7/", True, id="glob-globstar"),
        pytest.param({"path_patterns": "/r/plain"}, "/r/plain/", False, id="glob-no-slash"),
        pytest.param(
            {"path_patterns": "/r/plain/caf%C3%A9/"}, "/r/plain/caf%C3%A9/", True, id="percent"
        ),
        pytest.param({"path_patterns": "/r/plain/café/"}, "/r/plain/caf%C3%A9/", True, id="utf8"),
        pytest.param({"url_names": "r:plain", "enabled": False}, "/r/plain/", False, id="off"),
    ],
)
def test_which_requests_a_rule_covers(
    client: Any, make_rule: MakeRule, fields: dict[str, Any], path: str, covered: bool
) -> None:
    make_rule(**fields)
    response = client.get(path)
    assert response.status_code == 200
    assert ("ETag" in response) is covered
    if covered:
        assert "rule 'notes'" in response["X-Conditional"]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_revalidation_is_answered_before_the_view_runs(
    client: Any, make_rule: MakeRule, method: str
) -> None:
    make_rule(url_names="r:plain")
    first = client.generic(method, "/r/plain/")
    rule_views.calls.clear()
    with CaptureQueriesContext(connection) as queries:
        second = client.generic(method, "/r/plain/", headers={"If-None-Match": first["ETag"]})
    assert second.status_code == 304
    assert rule_views.calls == []
    assert second["ETag"] == first["ETag"]
    assert second.content == b""
    # The stamps, nothing else: no rule reload, no URL resolution, no view query.
    assert len(queries) <= 1, [query["sql"] for query in queries]
    assert second["X-Conditional"].startswith("304; kept in this process; rule 'notes'")


def test_a_write_to_a_model_the_rule_names_changes_the_tag(
    client: Any, make_rule: MakeRule
) -> None:
    make_rule(url_names="r:plain")
    first = client.get("/r/plain/")
    Note.objects.create(text="new")
    second = client.get("/r/plain/", headers={"If-None-Match": first["ETag"]})
    assert second.status_code == 200
    assert second["ETag"] != first["ETag"]
    assert b"new" in second.content


def test_a_write_to_another_model_keeps_the_304(client: Any, make_rule: MakeRule) -> None:
    make_rule(url_names="r:plain")
    first = client.get("/r/plain/")
    get_user_model().objects.create(username="someone")
    second = client.get("/r/plain/", headers={"If-None-Match": first["ETag"]})
    assert second.status_code == 304


def test_the_highest_priority_wins(client: Any, make_rule: MakeRule) -> None:
    make_rule("low", url_names="r:plain", priority=1)
    make_rule("high", url_names="r:*", priority=5, max_age=60)
    make_rule("later-name-same-priority", path_patterns="/r/plain/", priority=5)
    response = client.get("/r/plain/")
    assert "rule 'high'" in response["X-Conditional"]
    assert "max-age=60" in response["Cache-Control"]


@pytest.mark.parametrize(
    ("path", "why"),
    [
        pytest.param("/articles/x/", "decorator", id="own-decorator"),
        pytest.param("/about/", "mixin", id="own-mixin"),
        pytest.param("/r/members/", "login", id="login-required"),
        pytest.param("/r/editors/", "access", id="permission-required"),
    ],
)
def test_views_with_their_own_validators_or_access_checks_are_left_alone(
    client: Any, make_rule: MakeRule, path: str, why: str
) -> None:
    make_rule(path_patterns="/**", max_age=99)
    response = client.get(path)
    assert "max-age=99" not in response.get("Cache-Control", "")
    assert "rule 'notes'" not in response.get("X-Conditional", "")
    rule, page = current_rules().rule_for(client.request(PATH_INFO=path).wsgi_request)
    assert rule is None
    assert page.protected is not None
    assert why in page.protected


def test_a_decorated_view_keeps_its_own_tag(client: Any, make_rule: MakeRule) -> None:
    from testproject.demo.factories import ArticleFactory

    article = ArticleFactory(is_published=True)
    path = f"/articles/{article.slug}/"
    without = client.get(path)["ETag"]
    make_rule(path_patterns="/articles/*/")
    assert client.get(path)["ETag"] == without


def test_the_admin_is_never_covered(admin_client: Any, make_rule: MakeRule) -> None:
    ConditionalRule.objects.create(name="everything", path_patterns="/**", audience="per_user")
    response = admin_client.get("/admin/")
    assert response.status_code == 200
    assert "ETag" not in response


# --- Objects ---------------------------------------------------------------------------


def test_an_object_rule_gives_a_strong_tag_and_follows_its_object(
    client: Any, make_rule: MakeRule
) -> None:
    from testproject.demo.factories import ArticleFactory
    from testproject.demo.models import Article, Author

    article, other = ArticleFactory(is_published=True), ArticleFactory(is_published=True)
    make_rule(
        url_names="demo:plain-article",
        object=(Article, "slug", "slug"),
        depends_on=(Author,),
        audience="everyone",
    )
    path = f"/plain/articles/{article.slug}/"
    first, second = revalidate(client, path)
    assert not first["ETag"].startswith("W/")
    assert second.status_code == 304
    Article.objects.filter(pk=other.pk).update(title="Another title")
    assert client.get(path, headers={"If-None-Match": first["ETag"]}).status_code == 304
    Article.objects.filter(pk=article.pk).update(title="A new title")
    third = client.get(path, headers={"If-None-Match": first["ETag"]})
    assert third.status_code == 200
    assert b"A new title" in third.content


def test_a_missing_object_is_the_views_answer(client: Any, make_rule: MakeRule) -> None:
    from testproject.demo.models import Article

    make_rule(url_names="demo:plain-article", object=(Article, "slug", "slug"))
    response = client.get("/plain/articles/nothing-here/", headers={"If-None-Match": "*"})
    assert response.status_code == 404


def test_a_url_value_the_field_cannot_hold_is_the_views_answer(
    client: Any, make_rule: MakeRule
) -> None:
    make_rule(url_names="r:plain-pk", object=(Note, "pk", "pk"))
    Note.objects.create(text="one")
    assert client.get("/r/plain/99999999999999999999999/").status_code in {200, 404}


# --- Audiences -------------------------------------------------------------------------


def test_anonymous_only_passes_requests_with_a_session(client: Any, make_rule: MakeRule) -> None:
    make_rule(url_names="r:plain")
    anonymous = client.get("/r/plain/")
    assert "ETag" in anonymous
    assert "Cookie" in anonymous["Vary"]
    client.force_login(get_user_model().objects.create(username="ann"))
    logged_in = client.get("/r/plain/", headers={"If-None-Match": anonymous["ETag"]})
    assert logged_in.status_code == 200
    assert "ETag" not in logged_in
    assert logged_in["X-Conditional"].startswith("passed; the request carries a session cookie")


def test_anonymous_only_passes_requests_with_credentials(client: Any, make_rule: MakeRule) -> None:
    make_rule(url_names="r:plain")
    response = client.get("/r/plain/", headers={"Authorization": "Basic eDp5"})
    assert "ETag" not in response


def test_per_user_tags_never_match_across_users(client: Any, make_rule: MakeRule) -> None:
    make_rule(url_names="r:user", audience="per_user")
    users = get_user_model().objects
    client.force_login(users.create(username="ann"))
    ann = client.get("/r/user/")
    assert "private" in ann["Cache-Control"]
    assert "Cookie" in ann["Vary"]
    assert client.get("/r/user/", headers={"If-None-Match": ann["ETag"]}).status_code == 304
    client.logout()
    client.force_login(users.create(username="bob"))
    bob = client.get("/r/user/", headers={"If-None-Match": ann["ETag"]})
    assert bob.status_code == 200
    assert bob["ETag"] != ann["ETag"]
    assert b"bob" in bob.content


def test_everyone_shares_one_tag(client: Any, make_rule: MakeRule) -> None:
    make_rule(url_names="r:plain", audience="everyone", shared_caches="public", s_maxage=30)
    anonymous = client.get("/r/plain/")
    assert "public" in anonymous["Cache-Control"]
    assert "s-maxage=30" in anonymous["Cache-Control"]
    client.force_login(get_user_model().objects.create(username="ann"))
    assert client.get("/r/plain/", headers={"If-None-Match": anonymous["ETag"]}).status_code == 304


def test_a_rules_vary_headers_are_in_its_tag(client: Any, make_rule: MakeRule) -> None:
    make_rule(url_names="r:vary-accept", vary="Accept")
    text, _ = revalidate(client, "/r/vary-accept/", Accept="text/plain")
    html = client.get("/r/vary-accept/", headers={"Accept": "text/html"})
    assert html["ETag"] != text["ETag"]
    assert "Accept" in text["Vary"]


# --- Learning from the 200s ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "audience", "reason"),
    [
        pytest.param("cookie", "anonymous", "sets the cookie 'theme'", id="cookie"),
        pytest.param("private", "anonymous", "private", id="private"),
        pytest.param("no-store", "per_user", "no-store", id="no-store-even-per-user"),
        pytest.param("vary-accept", "everyone", "varies on Accept", id="vary"),
        pytest.param("csrf", "anonymous", "CSRF", id="csrf-token"),
        pytest.param("session", "anonymous", "writes the session", id="session-write"),
        pytest.param("user", "everyone", "reads the session", id="reads-user"),
        pytest.param("messages", "anonymous", "messages", id="messages"),
        pytest.param("own-etag", "anonymous", "validators of its own", id="own-etag"),
    ],
)
def test_a_page_unsafe_to_share_never_gets_validators(
    client: Any, make_rule: MakeRule, name: str, audience: str, reason: str
) -> None:
    rule = make_rule(url_names=f"r:{name}", audience=audience)
    first = client.get(f"/r/{name}/")
    assert first.status_code == 200
    assert first.get("ETag") in {None, '"own"'}
    assert first["X-Conditional"].startswith("refused;")
    assert reason in first["X-Conditional"]
    refusal = RuleRefusal.objects.get(rule=rule)
    assert refusal.path == f"/r/{name}/"
    assert reason in refusal.reason
    # From now on the view answers, untouched, in this process and (rules reload) any other.
    second = client.get(f"/r/{name}/", headers={"If-None-Match": '"any"'})
    assert second.status_code == 200
    # Passed for the refusal, or for the session or messages cookie the first one set.
    assert second["X-Conditional"].startswith("passed; ")
    current_rules(force=True)
    assert current_rules().is_refused(current_rules().rules[0], f"/r/{name}/")


@override_settings(CONDITIONAL_RULES_REFRESH=0)
def test_saving_the_rule_tries_its_refused_pages_again(client: Any, make_rule: MakeRule) -> None:
    rule = make_rule(url_names="r:cookie")
    client.get("/r/cookie/")
    assert rule.refusals.count() == 1
    rule.save()
    assert rule.refusals.count() == 0
    assert client.get("/r/cookie/")["X-Conditional"].startswith("refused;")


def test_a_per_user_rule_may_cover_pages_that_read_the_user(
    client: Any, make_rule: MakeRule
) -> None:
    make_rule(url_names="r:user", audience="per_user")
    client.force_login(get_user_model().objects.create(username="ann"))
    assert "ETag" in client.get("/r/user/")


def test_only_200s_get_validators(client: Any, make_rule: MakeRule) -> None:
    make_rule(url_names="r:missing")
    response = client.get("/r/missing/")
    assert response.status_code == 404
    assert "ETag" not in response
    assert not RuleRefusal.objects.exists()


# --- Preconditions, failures -----------------------------------------------------------


def test_a_failed_if_match_on_get_is_412_after_the_view_ran(
    client: Any, make_rule: MakeRule
) -> None:
    make_rule(url_names="r:plain")
    response = client.get("/r/plain/", headers={"If-Match": '"nope"'})
    assert response.status_code == 412
    assert rule_views.calls == ["/r/plain/"]


def test_stamps_that_cannot_be_read_serve_the_page_without_validators(
    client: Any, make_rule: MakeRule, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_conditional import derivation
    from django_conditional.stamp_errors import StampsUnavailable

    make_rule(url_names="r:plain")
    current_rules()

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise StampsUnavailable("the stamp store does not answer")

    monkeypatch.setattr(derivation, "read_stamps", unavailable)
    response = client.get("/r/plain/", headers={"If-None-Match": '"x"'})
    assert response.status_code == 200
    assert "ETag" not in response
    guarded = client.get("/r/plain/", headers={"If-Match": '"x"'})
    assert guarded.status_code == 503


def test_rules_that_cannot_be_loaded_leave_requests_to_their_views(
    client: Any, make_rule: MakeRule, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    from django.db import DatabaseError

    from django_conditional import rules

    make_rule(url_names="r:plain")

    def broken() -> Any:
        raise DatabaseError("no such table: django_conditional_conditionalrule")

    monkeypatch.setattr(rules, "load_rules", broken)
    response = client.get("/r/plain/")
    assert response.status_code == 200
    assert "ETag" not in response
    assert "migrate" in caplog.text


def test_a_stored_rule_that_no_longer_validates_is_skipped(
    client: Any, make_rule: MakeRule, caplog: Any
) -> None:
    make_rule(url_names="r:plain")
    ConditionalRule.objects.filter(name="notes").update(path_patterns="/[bad]/")
    response = client.get("/r/plain/")
    assert "ETag" not in response
    assert current_rules().invalid.keys() == {"notes"}
    assert "not applied" in caplog.text


# --- Reloading -------------------------------------------------------------------------


def test_a_changed_rule_applies_at_once_where_its_pages_are_derived(
    client: Any, make_rule: MakeRule
) -> None:
    rule = make_rule(url_names="r:plain")
    first = client.get("/r/plain/")
    # As another process would: a queryset update, which this process's rules do not see.
    ConditionalRule.objects.filter(pk=rule.pk).update(max_age=123)
    second = client.get("/r/plain/", headers={"If-None-Match": first["ETag"]})
    assert second.status_code == 200
    assert "max-age=123" in second["Cache-Control"]
    ConditionalRule.objects.filter(pk=rule.pk).update(enabled=False)
    third = client.get("/r/plain/", headers={"If-None-Match": second["ETag"]})
    assert third.status_code == 200
    assert "ETag" not in third


@override_settings(CONDITIONAL_RULES_REFRESH=0)
def test_a_new_rule_applies_to_pages_no_rule_covered(client: Any, make_rule: MakeRule) -> None:
    make_rule("first", url_names="r:other")
    assert "ETag" not in client.get("/r/plain/")
    make_rule("second", url_names="r:plain")
    assert "ETag" in client.get("/r/plain/")


def test_rules_are_checked_at_most_once_a_refresh_with_database_stamps(
    client: Any, make_rule: MakeRule
) -> None:
    make_rule(url_names="r:other")
    client.get("/r/plain/")
    with CaptureQueriesContext(connection) as queries:
        client.get("/r/plain/")
    assert not [query for query in queries if "changestamp" in query["sql"]]


# --- Counts ----------------------------------------------------------------------------


def test_counts_are_kept_in_memory_and_added_in_batches(client: Any, make_rule: MakeRule) -> None:
    rule = make_rule(url_names="r:plain")
    first, _ = revalidate(client, "/r/plain/")
    client.get("/r/plain/", headers={"If-None-Match": first["ETag"]})
    assert rule_counts.pending(rule.pk) == {"not_modified": 2, "full": 1, "passed": 0, "failed": 0}
    assert not RuleCounter.objects.exists()
    rule_counts.flush()
    counter = RuleCounter.objects.get(rule=rule)
    assert (counter.not_modified, counter.full) == (2, 1)
    rule_counts.count(rule.pk, "full")
    rule_counts.flush()
    counter.refresh_from_db()
    assert counter.full == 2


@override_settings(CONDITIONAL_RULES_COUNT_BATCH=3)
def test_a_full_batch_is_written_without_a_write_per_request(
    client: Any, make_rule: MakeRule
) -> None:
    rule = make_rule(url_names="r:plain")
    client.get("/r/plain/")
    client.get("/r/plain/")
    assert not RuleCounter.objects.exists()
    client.get("/r/plain/")
    assert RuleCounter.objects.get(rule=rule).full == 3


# --- Async -----------------------------------------------------------------------------


async def test_the_async_stack_answers_the_same(async_client: Any) -> None:
    from asgiref.sync import sync_to_async

    @sync_to_async
    def setup() -> None:
        rule = ConditionalRule.objects.create(name="async", url_names="r:async\nr:plain")
        rule.depends_on.set([ContentType.objects.get_for_model(Note)])
        Note.objects.create(text="one")

    await setup()
    for path in ("/r/async/", "/r/plain/"):
        first = await async_client.get(path)
        assert first.status_code == 200
        second = await async_client.get(path, headers={"If-None-Match": first["ETag"]})
        assert second.status_code == 304
    await sync_to_async(Note.objects.create)(text="two")
    third = await async_client.get("/r/async/", headers={"If-None-Match": first["ETag"]})
    assert third.status_code == 200
    assert b"two" in third.content
