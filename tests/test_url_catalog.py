"""The URL catalog: the demo's URLconf and a small one here, coverage and unknown names."""

from __future__ import annotations

import pytest
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import include, path, re_path
from django.views import View

from django_conditional.rule_patterns import UrlNamePattern
from django_conditional.url_catalog import (
    MAX_LINES,
    SAMPLE_UUID,
    CatalogEntry,
    catalog,
    covered_entries,
    entries_matching,
    known_url_names,
    protected_coverage,
    unknown_url_name_patterns,
    unknown_url_names,
)

ADMIN = "the admin is never covered by rules"
DECORATOR = "the view has its own conditional decorator, which wins over rules"
MIXIN = "the view has its own conditional mixin, which wins over rules"
ACCESS = "the view checks access (login_required, permission_required or user_passes_test)"


def plain(request: HttpRequest, **kwargs: object) -> HttpResponse:
    return HttpResponse("plain")


class Private(LoginRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("private")


# The URLconf of the tests below that set ROOT_URLCONF to this module.
urlpatterns = [
    path("open/", plain, name="open"),
    path("login/", login_required(plain), name="needs-login"),
    path("perm/", permission_required("demo.change_article")(plain), name="needs-perm"),
    path("mixin/", Private.as_view(), name="mixin"),
    re_path(r"^legacy\.html$", plain, name="legacy"),
    re_path(r"^archive/(?P<year>[0-9]{4})/$", plain, name="archive"),
    re_path(r"^guarded/(?P<year>[0-9]{4})/$", login_required(plain), name="guarded-archive"),
    path("things/<uuid:token>/", plain, name="thing"),
    path("files/<path:rest>", plain, name="file"),
    path("page/", plain, {"slug": "home"}, name="page"),
    path("unnamed/", plain),
    # /shadow/x/ resolves to the first: the second is never reached by its sample.
    path("shadow/<slug:slug>/", plain, name="shadow-any"),
    path("shadow/x/", login_required(plain), name="shadow-x"),
    path(
        "outer/",
        include(
            (
                [
                    path("<int:pk>/", plain, name="leaf"),
                    path("inner/", include(([path("<slug:slug>/", plain, name="leaf")], "inner"))),
                ],
                "outer",
            )
        ),
    ),
]


def by_name(name: str) -> CatalogEntry:
    [entry] = [entry for entry in catalog() if entry.name == name]
    return entry


# --- The demo's URLconf ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sample_path", "protected"),
    [
        pytest.param("admin:index", "/admin/", ADMIN, id="admin-index"),
        pytest.param(
            "admin:demo_article_change", "/admin/demo/article/x/change/", ADMIN, id="admin-change"
        ),
        # A regular expression with an alternation: no sample, the reason from the callback.
        pytest.param("admin:app_list", None, ADMIN, id="admin-app-list-regex"),
        pytest.param("demo:article-list", "/", MIXIN, id="list-mixin"),
        pytest.param("demo:article-detail", "/articles/x/", DECORATOR, id="detail-decorator"),
        pytest.param(
            "demo:async-article-detail", "/async/articles/x/", DECORATOR, id="async-decorator"
        ),
        pytest.param("demo:author-detail", "/authors/x/", MIXIN, id="detail-mixin"),
        pytest.param("demo:feed", "/feed.txt", DECORATOR, id="feed-condition"),
        pytest.param("demo:plain-article", "/plain/articles/x/", None, id="plain-article"),
        pytest.param("demo:plain-authors", "/plain/authors/", None, id="plain-authors"),
        pytest.param("demo:plain-me", "/plain/me/", None, id="plain-me"),
        pytest.param("demo:healthz", "/healthz", None, id="healthz"),
    ],
)
def test_demo_entries(name, sample_path, protected):
    entry = by_name(name)
    assert (entry.sample_path, entry.protected) == (sample_path, protected)


def test_demo_entry_fields():
    entry = by_name("demo:plain-article")
    assert entry.namespaces == ("demo",)
    assert entry.url_name == "plain-article"
    assert entry.route == "plain/articles/<slug:slug>/"
    assert entry.kwargs == {"slug"}
    assert entry.reachable
    assert entry.callback.__name__ == "plain_article"


def test_demo_known_url_names():
    names = known_url_names()
    assert {"admin:index", "demo:article-detail", "demo:plain-me"} <= names
    assert None not in names


def test_entries_matching_a_namespace():
    found = entries_matching(UrlNamePattern.parse("demo:*"))
    assert [entry.url_name for entry in found][:2] == ["article-list", "article-detail"]
    assert len(found) == 17  # the demo.urls entries: its API, edit page and DRF routes included
    assert entries_matching(UrlNamePattern.parse("blog:*")) == []


def test_catalog_is_kept_per_urlconf():
    demo = catalog()
    assert catalog() is demo
    with override_settings(ROOT_URLCONF=__name__):
        assert "open" in known_url_names()
    # Built again after ROOT_URLCONF changed (twice): the same entries, not the kept tuple.
    assert catalog() == demo
    assert catalog() is not demo
    assert "open" not in known_url_names()


# --- A URLconf with access checks, regular expressions and nested namespaces -------------


@pytest.mark.parametrize(
    ("name", "sample_path", "protected"),
    [
        pytest.param("open", "/open/", None, id="plain"),
        pytest.param("needs-login", "/login/", ACCESS, id="login"),
        pytest.param("needs-perm", "/perm/", ACCESS, id="permission"),
        pytest.param("mixin", "/mixin/", "Private checks access (AccessMixin)", id="access-mixin"),
        pytest.param("legacy", "/legacy.html", None, id="regex-literal"),
        pytest.param("archive", None, None, id="regex-no-sample"),
        pytest.param("guarded-archive", None, ACCESS, id="regex-no-sample-protected"),
        pytest.param("thing", f"/things/{SAMPLE_UUID}/", None, id="uuid"),
        pytest.param("file", "/files/x", None, id="path-converter"),
        pytest.param("shadow-x", "/shadow/x/", ACCESS, id="shadowed"),
        pytest.param("outer:leaf", "/outer/1/", None, id="namespace-int"),
        pytest.param("outer:inner:leaf", "/outer/inner/x/", None, id="nested-namespaces"),
    ],
)
@override_settings(ROOT_URLCONF=__name__)
def test_entries_of_a_small_urlconf(name, sample_path, protected):
    entry = by_name(name)
    assert (entry.sample_path, entry.protected) == (sample_path, protected)


@pytest.mark.parametrize(
    ("name", "reachable", "kwargs"),
    [
        pytest.param("archive", False, {"year"}, id="regex-named-group"),
        pytest.param("page", True, {"slug"}, id="extra-kwargs"),
        pytest.param("shadow-any", True, {"slug"}, id="shadowing"),
        pytest.param("shadow-x", False, set(), id="shadowed"),
        pytest.param("outer:inner:leaf", True, {"slug"}, id="nested"),
    ],
)
@override_settings(ROOT_URLCONF=__name__)
def test_reachable_and_kwargs(name, reachable, kwargs):
    entry = by_name(name)
    assert (entry.reachable, entry.kwargs) == (reachable, kwargs)


@override_settings(ROOT_URLCONF=__name__)
def test_unnamed_and_nested_names():
    [unnamed] = [entry for entry in catalog() if entry.route == "unnamed/"]
    assert (unnamed.name, unnamed.url_name, unnamed.describe()) == (None, None, "/unnamed/")
    inner = by_name("outer:inner:leaf")
    assert inner.namespaces == ("outer", "inner")
    assert inner.describe() == "/outer/inner/x/ (outer:inner:leaf)"


# --- Which views a rule's texts cover -----------------------------------------------------


@pytest.mark.parametrize(
    ("url_names", "path_patterns", "expected"),
    [
        pytest.param(
            "demo:article-detail",
            "",
            [f"'demo:article-detail' covers /articles/x/ (demo:article-detail): {DECORATOR}"],
            id="name-of-a-decorated-view",
        ),
        pytest.param(
            "",
            "/articles/hello/",
            [f"'/articles/hello/' covers /articles/hello/ (demo:article-detail): {DECORATOR}"],
            id="literal-path-of-a-decorated-view",
        ),
        pytest.param(
            "demo:about\n\ndemo:about",
            "/about/",
            [f"'demo:about' covers /about/ (demo:about): {MIXIN}"],
            id="one-line-per-view",
        ),
        pytest.param("demo:plain-article", "/plain/**", [], id="plain-views"),
        pytest.param("demo:healthz", "/healthz", [], id="undecorated-view"),
        pytest.param("*\nbad name", "no-slash/\n/a/**/**", [], id="unparsable-lines-ignored"),
        pytest.param("", "", [], id="empty"),
    ],
)
def test_protected_coverage(url_names, path_patterns, expected):
    assert protected_coverage(url_names, path_patterns) == expected


@pytest.mark.parametrize(
    ("url_names", "path_patterns", "first"),
    [
        pytest.param("admin:*", "", f"'admin:*' covers /admin/ (admin:index): {ADMIN}", id="name"),
        pytest.param(
            "", "/admin/**", f"'/admin/**' covers /admin/ (admin:index): {ADMIN}", id="glob"
        ),
    ],
)
def test_protected_coverage_is_capped(url_names, path_patterns, first):
    lines = protected_coverage(url_names, path_patterns)
    assert len(lines) == MAX_LINES + 1
    assert lines[0] == first
    assert lines[-1].startswith("and ")
    assert lines[-1].endswith(" more")


def test_coverage_of_a_demo_namespace():
    lines = protected_coverage("demo:*", "")
    assert len(lines) == 10  # not the API's unguarded view (Django's own condition)
    assert not any("plain" in line for line in lines)


@override_settings(ROOT_URLCONF=__name__)
def test_covered_entries_through_a_glob_and_a_resolved_path():
    # /archive/2024/ has no sample, but the glob's own path resolves to it.
    covered = covered_entries("outer:*", "/archive/2024/\n/shadow/*/")
    assert [(c.entry.name, c.pattern, c.path) for c in covered] == [
        ("archive", "/archive/2024/", "/archive/2024/"),
        ("shadow-any", "/shadow/*/", "/shadow/x/"),
        ("outer:leaf", "outer:*", "/outer/1/"),
        ("outer:inner:leaf", "outer:*", "/outer/inner/x/"),
    ]


@override_settings(ROOT_URLCONF=__name__)
def test_protected_coverage_of_access_checks():
    assert protected_coverage("needs-perm", "/mixin/\n/guarded/1999/") == [
        f"'needs-perm' covers /perm/ (needs-perm): {ACCESS}",
        "'/mixin/' covers /mixin/ (mixin): Private checks access (AccessMixin)",
        f"'/guarded/1999/' covers /guarded/1999/ (guarded-archive): {ACCESS}",
    ]


# --- Names that match no URL -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url_names", "expected"),
    [
        pytest.param(
            "demo:artcle-detail",
            [
                "'demo:artcle-detail' matches no URL name in the URLconf; "
                "did you mean 'demo:article-detail'?"
            ],
            id="typo",
        ),
        pytest.param(
            "dem:*",
            ["'dem:*' matches no URL name in the URLconf; did you mean 'demo:*'?"],
            id="namespace-typo",
        ),
        pytest.param(
            "plain-article",
            [
                "'plain-article' matches no URL name in the URLconf; "
                "did you mean 'demo:plain-article'?"
            ],
            id="namespace-missing",
        ),
        pytest.param(
            "zzzzzz", ["'zzzzzz' matches no URL name in the URLconf."], id="no-close-match"
        ),
        pytest.param("demo:plain-article\ndemo:*\nadmin:index", [], id="known"),
        pytest.param("*\n:x", [], id="unparsable-lines-ignored"),
    ],
)
def test_unknown_url_names(url_names, expected):
    assert unknown_url_names(url_names) == expected


@override_settings(ROOT_URLCONF=__name__)
def test_unknown_url_name_patterns_in_nested_namespaces():
    assert unknown_url_name_patterns("outer:inner:leef\nouter:innr:*\nouter:inner:*") == [
        ("outer:inner:leef", "outer:inner:leaf"),
        ("outer:innr:*", "outer:inner:*"),
    ]
