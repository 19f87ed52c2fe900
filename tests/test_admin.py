"""The rule admin through Django's test client: errors that say what to fix, counts, refusals.

A rule created by the admin's own POST applies at once; bad input is an error on its field.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse

from django_conditional import rule_counts
from django_conditional.admin import ConditionalRuleForm, admin_coverage, hit_rate
from django_conditional.models import ConditionalRule, RuleCounter, RuleRefusal
from testproject.demo.factories import ArticleFactory, AuthorFactory
from testproject.demo.models import Article, Author

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/django_conditional/conditionalrule/"
CHANGELIST_URL = "/admin/django_conditional/conditionalrule/"


def content_type(label: str) -> ContentType:
    app_label, model = label.split(".")
    return ContentType.objects.get_by_natural_key(app_label, model.lower())


def rule_data(**overrides: Any) -> dict[str, Any]:
    """A valid add form's POST for a rule on the author index; ``ct:app.Model`` for models."""
    data: dict[str, Any] = {
        "name": "Author index",
        "enabled": "on",
        "priority": "0",
        "url_names": "",
        "path_patterns": "/plain/authors/",
        "methods": ["GET", "HEAD"],
        "depends_on": ["ct:demo.Author", "ct:demo.Article"],
        "object_model": "",
        "object_field": "",
        "object_kwarg": "",
        "audience": "anonymous",
        "tag_strength": "auto",
        "max_age": "0",
        "s_maxage": "",
        "stale_while_revalidate": "",
        "shared_caches": "",
        "must_revalidate": "on",
        "vary": "",
        "notes": "",
        "_save": "Save",
    }
    data.update(overrides)

    def resolve(value: Any) -> Any:
        if isinstance(value, list):
            return [resolve(item) for item in value]
        if isinstance(value, str) and value.startswith("ct:"):
            return str(content_type(value[3:]).pk)
        return value

    return {name: resolve(value) for name, value in data.items() if value is not None}


def refusal_forms(*refusals: RuleRefusal) -> dict[str, str]:
    """The change form's refused-pages inline, as the browser posts it."""
    data = {
        "refusals-TOTAL_FORMS": str(len(refusals)),
        "refusals-INITIAL_FORMS": str(len(refusals)),
        "refusals-MIN_NUM_FORMS": "0",
        "refusals-MAX_NUM_FORMS": "0",
    }
    for number, refusal in enumerate(refusals):
        data[f"refusals-{number}-id"] = str(refusal.pk)
        data[f"refusals-{number}-rule"] = str(refusal.rule_id)
    return data


def make_rule(name: str = "Author index", **fields: Any) -> ConditionalRule:
    fields.setdefault("path_patterns", "/plain/authors/")
    rule = ConditionalRule.objects.create(name=name, **fields)
    rule.depends_on.set([content_type("demo.Author"), content_type("demo.Article")])
    return rule


def change_url(rule: ConditionalRule) -> str:
    return reverse("admin:django_conditional_conditionalrule_change", args=[rule.pk])


# --- Rendering -----------------------------------------------------------------------


def test_the_changelist_and_both_forms_render(admin_client: Client) -> None:
    rule = make_rule()
    changelist = admin_client.get(CHANGELIST_URL)
    added = admin_client.get(f"{ADD_URL}add/")
    changed = admin_client.get(change_url(rule))
    assert [changelist.status_code, added.status_code, changed.status_code] == [200, 200, 200]
    assert "Author index" in changelist.text
    for heading in (
        "Which pages",
        "What the pages show",
        "Who shares a copy",
        "Caching headers",
        "Notes",
    ):
        assert heading in added.text
    assert "How the rule answered" in changed.text
    assert "How the rule answered" not in added.text
    # The model's help texts, and GET and HEAD as ticked checkboxes.
    assert "Models whose every write changes the pages" in added.text
    form = added.context["adminform"].form
    assert form["methods"].value() == ["GET", "HEAD"]


def test_content_types_are_installed_concrete_models_with_readable_labels() -> None:
    form = ConditionalRuleForm()
    labels = [label for _, label in form.fields["depends_on"].choices]
    assert "demo.Author (author)" in labels
    assert "auth.User (user)" in labels
    assert not [label for label in labels if label.startswith("django_conditional.")]
    # A proxy model shares its concrete model's table: only the concrete one is offered.
    assert not [label for label in labels if label.startswith("testapp.PublishedArticle ")]
    assert "testapp.Article (article)" in labels
    # Many-to-many tables are not models one picks.
    assert not [label for label in labels if "_" in label.split(" ")[0].split(".")[1]]
    object_labels = [label for _, label in form.fields["object_model"].choices]
    assert object_labels[0] == "(none: the pages show no single object)"


# --- Creating a rule ------------------------------------------------------------------


def test_a_rule_created_in_the_admin_is_applied_at_once(
    admin_client: Client, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    AuthorFactory.create_batch(2)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"{ADD_URL}add/", rule_data())
    assert response.status_code == 302, response.context["adminform"].form.errors
    rule = ConditionalRule.objects.get(name="Author index")
    assert rule.methods == "GET,HEAD"
    assert {ct.model_class() for ct in rule.depends_on.all()} == {Author, Article}

    first = client.get("/plain/authors/")
    second = client.get("/plain/authors/", headers={"If-None-Match": first["ETag"]})

    assert first.status_code == 200
    assert second.status_code == 304
    assert second["ETag"] == first["ETag"]


def test_only_the_methods_ticked_are_stored(admin_client: Client) -> None:
    response = admin_client.post(f"{ADD_URL}add/", rule_data(methods=["GET"]))
    assert response.status_code == 302
    assert ConditionalRule.objects.get().methods == "GET"


@pytest.mark.parametrize(
    ("url_names", "warning"),
    [
        pytest.param(
            "demo:article-detail",
            "'demo:article-detail' covers /articles/x/ (demo:article-detail): the view has "
            "its own conditional decorator, which wins over rules",
            id="own-decorator",
        ),
        pytest.param(
            "demo:plain-authors\ndemo:abuot",
            "'demo:abuot' matches no URL name in the URLconf; did you mean 'demo:about'?",
            id="typo",
        ),
    ],
)
def test_what_the_rule_cannot_answer_is_a_warning_after_saving(
    admin_client: Client, url_names: str, warning: str
) -> None:
    response = admin_client.post(
        f"{ADD_URL}add/", rule_data(path_patterns="", url_names=url_names), follow=True
    )
    shown = [str(message) for message in response.context["messages"]]
    assert warning in shown
    rule = ConditionalRule.objects.get(name="Author index")
    # The change form says it too, for as long as it holds.
    change = admin_client.get(change_url(rule))
    assert warning.replace("'", "&#x27;") in change.text


def test_a_rule_every_page_of_which_it_can_answer_has_no_warning(admin_client: Client) -> None:
    response = admin_client.post(f"{ADD_URL}add/", rule_data(), follow=True)
    levels = [message.level_tag for message in response.context["messages"]]
    assert levels == ["success"]
    change = admin_client.get(change_url(ConditionalRule.objects.get()))
    assert "Nothing: every page the patterns cover can be answered by the rule." in change.text


@pytest.mark.parametrize(
    ("overrides", "field", "phrase"),
    [
        pytest.param(
            {"path_patterns": "/a/[0-9]/"},
            "path_patterns",
            "character classes are not supported",
            id="glob-character-class",
        ),
        pytest.param(
            {"path_patterns": "/plain/authors/?page=2"},
            "path_patterns",
            "the query string is not part of the path",
            id="glob-query-string",
        ),
        pytest.param(
            {"path_patterns": "/plain/authors/\nplain/"},
            "path_patterns",
            "line 2: Path pattern 'plain/' must start with '/'",
            id="glob-second-line",
        ),
        pytest.param(
            {"path_patterns": "", "url_names": "*"},
            "url_names",
            "would cover every page, the admin included",
            id="name-star",
        ),
        pytest.param(
            {"path_patterns": "", "url_names": ""},
            "url_names",
            "Give at least one URL name or path pattern",
            id="no-pages",
        ),
        pytest.param(
            {"methods": ["GET", "POST"]},
            "methods",
            "Methods POST cannot be answered by a rule; choose GET and HEAD",
            id="method-post",
        ),
        pytest.param(
            {"methods": []}, "methods", "Methods (none) cannot be answered", id="method-none"
        ),
        pytest.param(
            {"audience": "per_user", "shared_caches": "public"},
            "shared_caches",
            "A per-user page must not be stored by shared caches",
            id="per-user-public",
        ),
        pytest.param(
            {"audience": "per_user", "s_maxage": "60"},
            "s_maxage",
            "s-maxage applies to shared caches",
            id="per-user-s-maxage",
        ),
        pytest.param(
            {"tag_strength": "strong"},
            "tag_strength",
            "without an object lookup a rule cannot know that",
            id="strong-without-object",
        ),
        pytest.param(
            {"object_model": "ct:demo.Article"},
            "object_field",
            "Name the field to look the object up by",
            id="object-without-field",
        ),
        pytest.param(
            {"object_model": "ct:demo.Article", "object_field": "slug"},
            "object_kwarg",
            "Name the URL argument that holds the value",
            id="object-without-kwarg",
        ),
        pytest.param(
            {"object_model": "ct:demo.Article", "object_field": "title", "object_kwarg": "slug"},
            "object_field",
            "demo.Article.title is not unique",
            id="object-field-not-unique",
        ),
        pytest.param(
            {"object_model": "ct:demo.Article", "object_field": "headline", "object_kwarg": "s"},
            "object_field",
            "demo.Article has no field 'headline'",
            id="object-field-missing",
        ),
        pytest.param(
            {"object_field": "slug", "object_kwarg": "slug"},
            "object_model",
            "Choose the object's model",
            id="field-without-object",
        ),
        pytest.param(
            {"vary": "Cookie"},
            "vary",
            "make the rule per user instead",
            id="vary-cookie-shared",
        ),
        pytest.param(
            {"vary": "Accept Language"}, "vary", "is not a header name", id="vary-not-a-header"
        ),
        pytest.param(
            {"path_patterns": "/admin/**"},
            "path_patterns",
            "'/admin/**' covers the admin (/admin/)",
            id="admin-globstar",
        ),
        pytest.param(
            {"path_patterns": "/*/"},
            "path_patterns",
            "'/*/' covers the admin (/admin/)",
            id="admin-by-wildcard",
        ),
        pytest.param(
            {"path_patterns": "/admin/demo/article/"},
            "path_patterns",
            "narrow it to pages outside /admin/",
            id="admin-page",
        ),
        pytest.param(
            {"path_patterns": "", "url_names": "admin:index"},
            "url_names",
            "'admin:index' names the admin",
            id="admin-name",
        ),
        pytest.param(
            {"path_patterns": "", "url_names": "admin:*"},
            "url_names",
            "'admin:*' names the admin",
            id="admin-namespace",
        ),
        pytest.param(
            {"depends_on": ["ct:django_conditional.ConditionalRule"]},
            "depends_on",
            "Select a valid choice",
            id="depends-on-own-model",
        ),
        pytest.param({"max_age": "-1"}, "max_age", "greater than or equal to 0", id="max-age"),
    ],
)
def test_invalid_input_is_an_error_on_the_field_to_fix(
    admin_client: Client, overrides: dict[str, Any], field: str, phrase: str
) -> None:
    response = admin_client.post(f"{ADD_URL}add/", rule_data(**overrides))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert any(phrase in message for message in errors.get(field, [])), errors
    assert phrase in response.text.replace("&#x27;", "'")
    assert not ConditionalRule.objects.exists()


def test_each_bad_line_is_its_own_message() -> None:
    form = ConditionalRuleForm(data=rule_data(path_patterns="/a/[0-9]/\n/ok/\n/b/{x,y}/"))
    assert not form.is_valid()
    assert len(form.errors["path_patterns"]) == 2
    assert form.errors["path_patterns"][0].startswith("line 1: ")
    assert form.errors["path_patterns"][1].startswith("line 3: ")


@pytest.mark.parametrize(
    ("url_names", "path_patterns", "covered"),
    [
        pytest.param("", "/plain/authors/", {}, id="plain-page"),
        pytest.param("", "/administrator/", {}, id="similar-prefix"),
        pytest.param("demo:*", "", {}, id="demo-namespace"),
        pytest.param("", "/**", {"path_patterns"}, id="everything"),
        pytest.param("admin:login", "/admin/", {"url_names", "path_patterns"}, id="both"),
    ],
)
def test_which_patterns_cover_the_admin(
    url_names: str, path_patterns: str, covered: set[str]
) -> None:
    assert set(admin_coverage(url_names, path_patterns)) == set(covered)


def test_a_stored_model_no_longer_installed_is_shown_and_must_be_removed(
    admin_client: Client,
) -> None:
    rule = make_rule()
    gone = ContentType.objects.create(app_label="shop", model="basket")
    rule.depends_on.add(gone)
    form = admin_client.get(change_url(rule)).context["adminform"].form
    assert str(gone.pk) in {str(pk) for pk in form["depends_on"].value()}
    assert (gone.pk, "shop.basket (no longer installed)") in [
        (choice.value, label) for choice, label in form.fields["depends_on"].choices
    ]

    kept = [*rule_data()["depends_on"], str(gone.pk)]
    response = admin_client.post(
        change_url(rule), {**rule_data(depends_on=kept), **refusal_forms()}
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["depends_on"] == [
        "shop.basket (no longer installed): remove it; the pages cannot depend on a model "
        "that is gone."
    ]
    assert rule.depends_on.filter(pk=gone.pk).exists()


# --- Counts and refusals ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("not_modified", "full", "shown"),
    [
        pytest.param(0, 0, "-", id="none"),
        pytest.param(3, 1, "75%", id="three-quarters"),
        pytest.param(0, 4, "0%", id="no-304"),
        pytest.param(2, 1, "67%", id="rounded"),
    ],
)
def test_hit_rate(not_modified: int, full: int, shown: str) -> None:
    assert hit_rate(not_modified, full) == shown


def test_the_changelist_adds_stored_and_pending_counts(admin_client: Client) -> None:
    rule = make_rule()
    RuleCounter.objects.create(rule=rule, not_modified=5, full=2, passed=1)
    for kind in ("not_modified", "not_modified", "not_modified", "full", "failed"):
        rule_counts.count(rule.pk, kind)  # type: ignore[arg-type]

    response = admin_client.get(CHANGELIST_URL)
    change = admin_client.get(change_url(rule))

    row = next(r for r in response.context["results"] if "Author index" in "".join(r))
    cells = "".join(row)
    assert '<td class="field-not_modified_count">8</td>' in cells
    assert '<td class="field-full_count">3</td>' in cells
    assert '<td class="field-hit_rate_shown">73%</td>' in cells
    assert "<th>Passed to the view</th><td>1</td>" in change.text
    assert "<th>412 Precondition Failed</th><td>1</td>" in change.text


def test_counts_written_by_a_flush_are_still_shown(admin_client: Client) -> None:
    rule = make_rule()
    rule_counts.count(rule.pk, "not_modified")
    rule_counts.count(rule.pk, "full")
    rule_counts.flush()
    response = admin_client.get(CHANGELIST_URL)
    assert '<td class="field-hit_rate_shown">50%</td>' in response.text
    assert RuleCounter.objects.get(rule=rule).not_modified == 1


def test_refused_pages_are_listed_and_warned_about(admin_client: Client) -> None:
    rule = make_rule()
    RuleRefusal.objects.create(
        rule=rule, path="/plain/authors/", reason="the response sets the cookie 'sessionid'"
    )
    changelist = admin_client.get(CHANGELIST_URL)
    change = admin_client.get(change_url(rule))
    assert "⚠ 1 page refused" in changelist.text
    assert "the response sets the cookie &#x27;sessionid&#x27;" in change.text
    assert "/plain/authors/" in change.text
    assert "saving the rule tries every one again" in change.text.lower()


def test_saving_the_rule_in_the_admin_forgets_its_refusals(admin_client: Client) -> None:
    rule = make_rule()
    RuleRefusal.objects.create(rule=rule, path="/plain/authors/", reason="sets a cookie")
    response = admin_client.post(
        change_url(rule), {**rule_data(), **refusal_forms(rule.refusals.get())}
    )
    assert response.status_code == 302
    assert not RuleRefusal.objects.exists()


def test_the_retry_action_forgets_refusals_without_saving(admin_client: Client) -> None:
    rule = make_rule()
    RuleRefusal.objects.create(rule=rule, path="/plain/authors/", reason="sets a cookie")
    modified = rule.modified
    response = admin_client.post(
        CHANGELIST_URL, {"action": "retry_refused", "_selected_action": [rule.pk]}, follow=True
    )
    assert "1 refused pages will be tried again" in response.text
    assert not RuleRefusal.objects.exists()
    rule.refresh_from_db()
    assert rule.modified == modified


@pytest.mark.parametrize(
    ("action", "enabled_before", "enabled_after", "message"),
    [
        pytest.param("enable", False, True, "Enabled 1 of 2 selected rules", id="enable"),
        pytest.param("disable", True, False, "Disabled 1 of 2 selected rules", id="disable"),
    ],
)
def test_enable_and_disable_actions(
    admin_client: Client, action: str, enabled_before: bool, enabled_after: bool, message: str
) -> None:
    one = make_rule("one", enabled=enabled_before)
    other = make_rule("other", enabled=enabled_after)
    response = admin_client.post(
        CHANGELIST_URL, {"action": action, "_selected_action": [one.pk, other.pk]}, follow=True
    )
    assert message in response.text
    assert set(ConditionalRule.objects.values_list("enabled", flat=True)) == {enabled_after}


def test_a_disabled_rule_stops_answering_in_this_process(
    admin_client: Client, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    AuthorFactory()
    rule = make_rule()
    etag = client.get("/plain/authors/")["ETag"]
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(CHANGELIST_URL, {"action": "disable", "_selected_action": [rule.pk]})
    response = client.get("/plain/authors/", headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert "ETag" not in response


# --- Queries ---------------------------------------------------------------------------


def test_the_changelist_runs_a_bounded_number_of_queries(
    admin_client: Client, django_assert_max_num_queries: Any
) -> None:
    author = content_type("demo.Author")
    for number in range(30):
        rule = ConditionalRule.objects.create(
            name=f"rule {number:02}", path_patterns=f"/plain/{number}/"
        )
        rule.depends_on.set([author])
        RuleCounter.objects.create(rule=rule, not_modified=number, full=1)
        if number % 2:
            RuleRefusal.objects.create(rule=rule, path=f"/plain/{number}/", reason="sets a cookie")
    ArticleFactory()
    admin_client.get(CHANGELIST_URL)  # the session and content types, once

    # The session, the user, two counts (filtered and total), the page of rules with
    # their counters and refusal counts; one to spare. Not one per rule.
    with django_assert_max_num_queries(6):
        response = admin_client.get(CHANGELIST_URL)

    assert response.text.count("⚠ 1 page refused") == 15
    assert '<td class="field-hit_rate_shown">97%</td>' in response.text  # 29 / (29 + 1)
