"""Validators derived from data: the ``conditional`` decorator and the class-based mixins.

Stamps move after commit, so these tests run outside pytest-django's
per-test transaction (``transactional_db``).
"""

from __future__ import annotations

import logging
import re

import pytest
from django.db import transaction
from django.test import override_settings

from django_conditional.rules import current_rules
from tests.conftest import forget_validators
from tests.testapp import views
from tests.testapp.models import Article, Author, Comment, Note, Tag

pytestmark = [pytest.mark.urls("tests.testapp.urls"), pytest.mark.django_db(transaction=True)]

STAMPS_IN_CACHE = override_settings(CONDITIONAL_STAMP_CACHE="default")


@pytest.fixture(autouse=True)
def _fresh_cache():
    from django.core.cache import cache

    cache.clear()
    views.views_calls.clear()


@pytest.fixture
def author():
    return Author.objects.create(name="Ada")


@pytest.fixture
def articles(author):
    return [Article.objects.create(title=f"A{n}", author=author) for n in range(5)]


def revalidate(client, path, response, **headers):
    return client.get(path, headers={"if-none-match": response["ETag"], **headers})


def assert_stays_fresh(client, path):
    first = client.get(path)
    assert first.status_code == 200
    second = revalidate(client, path, first)
    assert second.status_code == 304
    return first


# --- Queryset -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("write", "changes"),
    [
        pytest.param(
            lambda a: Article.objects.filter(pk=a[0].pk).update(title="x"), True, id="update"
        ),
        pytest.param(lambda a: a[1].delete(), True, id="delete"),
        pytest.param(
            lambda a: Article.objects.create(title="new", author=a[0].author), True, id="insert"
        ),
        pytest.param(lambda a: Author.objects.update(name="Bea"), True, id="dependency"),
        pytest.param(lambda a: Note.objects.create(text="n"), False, id="unrelated-table"),
        pytest.param(lambda a: Tag.objects.create(name="t"), False, id="unrelated-versioned"),
    ],
)
def test_queryset_page(client, articles, write, changes):
    first = assert_stays_fresh(client, "/data/articles/")
    write(articles)
    response = revalidate(client, "/data/articles/", first)
    assert response.status_code == (200 if changes else 304)
    if changes:
        assert response["ETag"] != first["ETag"]
        assert response.content != first.content


def test_filtered_subset_ignores_rows_outside_it(client, articles):
    Article.objects.filter(pk=articles[0].pk).update(published=False)
    first = assert_stays_fresh(client, "/data/published/")
    # A write to a row the page does not select moves the table's stamp, so the
    # validator is recomputed once, but comes out the same.
    Article.objects.filter(pk=articles[0].pk).update(title="hidden edit")
    assert revalidate(client, "/data/published/", first).status_code == 304
    # A row entering the subset changes it.
    Article.objects.filter(pk=articles[0].pk).update(published=True)
    assert revalidate(client, "/data/published/", first).status_code == 200


def test_sliced_queryset_is_exact_for_its_rows(client, articles):
    first = assert_stays_fresh(client, "/data/newest/")
    assert first.content == b",".join(str(a.pk).encode() for a in reversed(articles[-3:]))
    Article.objects.filter(pk=articles[0].pk).update(title="old and off the page")
    assert revalidate(client, "/data/newest/", first).status_code == 304
    Article.objects.create(title="newest", author=articles[0].author)
    assert revalidate(client, "/data/newest/", first).status_code == 200


def test_rolled_back_write_changes_nothing(client, articles):
    first = assert_stays_fresh(client, "/data/articles/")

    def write_then_fail():
        with transaction.atomic():
            Article.objects.filter(pk=articles[0].pk).update(title="never")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert revalidate(client, "/data/articles/", first).status_code == 304


# --- Object ------------------------------------------------------------------------


def test_object_page_has_a_strong_tag_and_reuses_the_object(client, articles):
    path = f"/data/articles/{articles[0].pk}/"
    first = assert_stays_fresh(client, path)
    assert not first["ETag"].startswith("W/")
    assert first.content == b"A0 (0 comments)"
    assert views.views_calls["article_detail"] == 1


def test_object_page_moves_with_the_object_and_its_dependencies(client, articles):
    path = f"/data/articles/{articles[0].pk}/"
    first = assert_stays_fresh(client, path)
    articles[1].save()  # another row of the same table
    assert revalidate(client, path, first).status_code == 304
    Comment.objects.create(article=articles[0], body="hi")
    second = revalidate(client, path, first)
    assert second.status_code == 200
    assert second.content == b"A0 (1 comments)"
    articles[0].save()
    assert revalidate(client, path, second).status_code == 200


def test_missing_object_is_404_even_with_if_match(client, articles):
    assert client.get("/data/articles/999999/").status_code == 404
    assert client.put("/data/articles/999999/", headers={"if-match": '"x"'}).status_code == 404


def test_if_match_on_the_object(client, articles):
    path = f"/data/articles/{articles[0].pk}/"
    current = client.get(path)["ETag"]
    done = client.put(path, headers={"if-match": current})
    assert done.status_code == 200
    # A write under If-Match moves the version, whatever the view wrote: a new tag.
    assert done["ETag"] == client.get(path)["ETag"] != current
    assert client.put(path, headers={"if-match": current}).status_code == 412
    response = client.put(path, headers={"if-match": '"stale"'})
    assert response.status_code == 412
    assert response["ETag"] == done["ETag"]


async def test_async_view(async_client, articles):
    path = f"/data/async/articles/{articles[0].pk}/"
    first = await async_client.get(path)
    assert first.status_code == 200
    revalidated = await async_client.get(path, headers={"if-none-match": first["ETag"]})
    assert revalidated.status_code == 304


@pytest.mark.parametrize("path", ["/data/articles/", "/data/notes/", "/cbv/articles/?page=2"])
def test_the_warm_304_derives_nothing_and_builds_no_queryset(client, articles, monkeypatch, path):
    """A revalidation matching a validator this process kept: answered before anything else."""
    from django.db.models import QuerySet

    from django_conditional import derivation

    first = client.get(path)
    work = []
    original_init = QuerySet.__init__

    def counting_init(self, *args, **kwargs):
        work.append("QuerySet")
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(QuerySet, "__init__", counting_init)
    # The decorator and the mixins import derive() from there on each use.
    monkeypatch.setattr(derivation, "derive", lambda *args, **kwargs: work.append("derive"))
    assert revalidate(client, path, first).status_code == 304
    assert work == []


async def test_async_warm_304_stays_on_the_event_loop(async_client, articles, monkeypatch):
    """Stamps in memory: the warm 304 needs no worker thread (and no query)."""
    from django_conditional import decorators

    path = f"/data/async/articles/{articles[0].pk}/"
    with STAMPS_IN_CACHE:
        first = await async_client.get(path)
        hops = []
        original = decorators.sync_to_async

        def counting(*args, **kwargs):
            hops.append(args)
            return original(*args, **kwargs)

        monkeypatch.setattr(decorators, "sync_to_async", counting)
        revalidated = await async_client.get(path, headers={"if-none-match": first["ETag"]})
        assert revalidated.status_code == 304
        assert revalidated["ETag"] == first["ETag"]
        assert hops == []


# --- depends_on, users ------------------------------------------------------------------


def test_depends_on_page(client, db):
    first = assert_stays_fresh(client, "/data/notes/")
    Note.objects.create(text="n")
    assert revalidate(client, "/data/notes/", first).status_code == 200


def test_per_user_by_default(client, django_user_model):
    alice = django_user_model.objects.create_user("alice", password="pw")
    bob = django_user_model.objects.create_user("bob", password="pw")
    client.force_login(alice)
    as_alice = assert_stays_fresh(client, "/data/my-notes/")
    assert "private" in as_alice["Cache-Control"]
    assert "Cookie" in as_alice["Vary"]
    client.force_login(bob)
    assert revalidate(client, "/data/my-notes/", as_alice).status_code == 200
    client.logout()
    assert revalidate(client, "/data/my-notes/", as_alice).status_code == 200


def test_password_change_changes_the_users_tags(client, django_user_model):
    alice = django_user_model.objects.create_user("alice", password="pw")
    client.force_login(alice)
    first = assert_stays_fresh(client, "/data/my-notes/")
    alice.set_password("new")
    alice.save()
    # Django logs the session out on the next request: the tag must not match.
    assert revalidate(client, "/data/my-notes/", first).status_code == 200


def test_public_pages_match_across_users(client, django_user_model):
    first = assert_stays_fresh(client, "/data/notes/")
    assert "private" not in first.get("Cache-Control", "")
    client.force_login(django_user_model.objects.create_user("carol"))
    assert revalidate(client, "/data/notes/", first).status_code == 304


@override_settings(CONDITIONAL_DEPLOY_VERSION="2")
def test_deploy_version_changes_every_tag(client, db):
    first = client.get("/data/notes/")
    with override_settings(CONDITIONAL_DEPLOY_VERSION="3"):
        assert revalidate(client, "/data/notes/", first).status_code == 200


def test_language_is_part_of_the_tag(client, db):
    from django.utils import translation

    with translation.override("en"):
        first = client.get("/data/notes/")
        assert revalidate(client, "/data/notes/", first).status_code == 304
    with translation.override("fr"):
        assert revalidate(client, "/data/notes/", first).status_code == 200


def test_tags_are_opaque_keyed_hashes(client, articles, settings):
    etag = client.get(f"/data/articles/{articles[0].pk}/")["ETag"]
    assert re.fullmatch(r'"[A-Za-z0-9_-]{22}"', etag)
    assert client.get(f"/data/articles/{articles[1].pk}/")["ETag"] != etag
    settings.SECRET_KEY = "another secret"
    assert client.get(f"/data/articles/{articles[0].pk}/")["ETag"] != etag


# --- Query counts -------------------------------------------------------------------------


def test_warm_304_with_stamps_in_the_cache_runs_no_query(
    client, articles, django_assert_num_queries
):
    with STAMPS_IN_CACHE:
        for path in (
            "/data/articles/",
            f"/data/articles/{articles[0].pk}/",
            "/data/notes/",
            "/cbv/articles/?page=2",
            f"/cbv/articles/{articles[0].pk}/",
        ):
            first = client.get(path)
            with django_assert_num_queries(0):
                assert revalidate(client, path, first).status_code == 304, path


def test_warm_304_with_stamps_in_the_database_runs_one_query(
    client, articles, django_assert_num_queries
):
    first = client.get("/data/articles/")
    with django_assert_num_queries(1):
        assert revalidate(client, "/data/articles/", first).status_code == 304


TWO_CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "v"},
    "stamps": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "s"},
}


@override_settings(CACHES=TWO_CACHES, CONDITIONAL_STAMP_CACHE="stamps")
def test_cold_304_runs_one_query(client, articles, django_assert_num_queries):
    """A write elsewhere, or an evicted validator: recomputed once, with one query."""
    first = client.get("/data/articles/")
    forget_validators()  # the validators, not the stamps
    with django_assert_num_queries(1):
        assert revalidate(client, "/data/articles/", first).status_code == 304
    with django_assert_num_queries(0):
        assert revalidate(client, "/data/articles/", first).status_code == 304


def test_cold_304_with_stamps_in_the_database(client, articles, django_assert_num_queries):
    first = client.get("/data/articles/")
    forget_validators()
    with django_assert_num_queries(2):  # the stamp read, then the aggregate
        assert revalidate(client, "/data/articles/", first).status_code == 304


def test_clearing_the_stamp_cache_never_gives_a_stale_304(client, articles):
    """Lost stamps come back as new tokens: tags change, nothing stale matches."""
    from django.core.cache import cache

    from django_conditional.stamps import ProcessStampStore, get_stamp_store

    with STAMPS_IN_CACHE:
        first = client.get("/data/notes/")
        cache.clear()
        store = get_stamp_store()
        if isinstance(store, ProcessStampStore):  # local memory: lost on a restart
            store.clear()
        assert revalidate(client, "/data/notes/", first).status_code == 200


# --- Class-based views -------------------------------------------------------------------


def test_list_view_pages(client, articles):
    first = assert_stays_fresh(client, "/cbv/articles/?page=2")
    assert first.content == b"page 2/3: A2,A3"
    Article.objects.filter(pk=articles[4].pk).update(title="page three")
    assert revalidate(client, "/cbv/articles/?page=2", first).status_code == 304
    Article.objects.filter(pk=articles[2].pk).update(title="page two")
    assert revalidate(client, "/cbv/articles/?page=2", first).status_code == 200


def test_list_view_count_change_changes_every_page(client, articles):
    first = assert_stays_fresh(client, "/cbv/articles/?page=1")
    Article.objects.create(title="A5", author=articles[0].author)  # now 4 pages
    assert revalidate(client, "/cbv/articles/?page=1", first).status_code == 200


def test_list_view_renders_what_the_validator_fetched(client, articles, django_assert_num_queries):
    with STAMPS_IN_CACHE:
        current_rules()  # the rules middleware loads its (empty) rules once, not per request
        with django_assert_num_queries(2):  # count + page, once each
            client.get("/cbv/articles/?page=2")


def test_list_view_bad_page_is_404(client, articles):
    assert client.get("/cbv/articles/?page=9").status_code == 404
    assert client.get("/cbv/articles/?page=x").status_code == 404
    assert client.get("/cbv/articles/?page=last").content == b"page 3/3: A4"


def test_detail_view(client, articles, django_user_model):
    client.force_login(django_user_model.objects.create_user("dora"))
    path = f"/cbv/articles/{articles[0].pk}/"
    first = assert_stays_fresh(client, path)
    assert first.content == b"A0 v1"
    articles[0].save()
    assert revalidate(client, path, first).content == b"A0 v2"
    assert client.get("/cbv/articles/999999/").status_code == 404


def test_detail_view_fetches_the_object_once(client, articles, django_assert_num_queries):
    with STAMPS_IN_CACHE:
        current_rules()  # the rules middleware loads its (empty) rules once, not per request
        with django_assert_num_queries(1):
            client.get(f"/cbv/articles/{articles[0].pk}/")


def test_template_view(client, db):
    first = assert_stays_fresh(client, "/cbv/stats/")
    Tag.objects.create(name="t")
    assert revalidate(client, "/cbv/stats/", first).content == b"1 tags, 0 notes"


def test_unsafe_request_without_precondition_computes_nothing(
    client, articles, django_assert_num_queries
):
    from django_conditional.rules import current_rules

    # The rules (which may guard writes) as every process holds them once loaded.
    current_rules()
    with django_assert_num_queries(1) as captured:  # the view's own query only
        assert client.post("/data/notes/").status_code == 200
    assert "testapp_note" in captured.captured_queries[0]["sql"]


def test_depends_on_is_read_once_even_from_a_generator(rf):
    from django.http import HttpResponse

    from django_conditional.decorators import conditional

    @conditional(depends_on=(model for model in [Note]), public=True)
    def view(request):
        return HttpResponse("ok")

    first = view(rf.get("/"))
    # Had the generator been consumed by the first request, the second would
    # depend on nothing: another tag now, and no change after the write.
    assert view(rf.get("/"))["ETag"] == first["ETag"]
    Note.objects.create(text="n")
    assert view(rf.get("/"))["ETag"] != first["ETag"]


# --- Misuse: errors that name the view and the fix ------------------------------------


def test_a_depends_on_typo_fails_when_the_decorator_is_applied():
    from django.core.exceptions import ImproperlyConfigured

    from django_conditional.decorators import conditional

    with pytest.raises(ImproperlyConfigured) as raised:

        @conditional(depends_on=["testapp.Athor"])
        def page(request): ...

    assert str(raised.value).startswith(
        "tests.test_conditional.test_a_depends_on_typo_fails_when_the_decorator_is_applied"
        ".<locals>.page: depends_on names 'testapp.Athor', which is not an installed model"
    )
    assert "Did you mean 'testapp.Author'?" in str(raised.value)


def test_a_depends_on_typo_before_the_apps_are_ready_fails_on_first_use(rf, monkeypatch):
    from django.apps import apps
    from django.core.exceptions import ImproperlyConfigured

    from django_conditional.decorators import conditional

    monkeypatch.setattr(apps, "ready", False)

    @conditional(depends_on=["testapp.Athor"], public=True)
    def page(request):
        raise AssertionError("the view must not run")

    monkeypatch.setattr(apps, "ready", True)
    with pytest.raises(ImproperlyConfigured, match=r"page: depends_on names 'testapp\.Athor'"):
        page(rf.get("/"))


def test_a_class_based_view_with_a_depends_on_typo_fails_on_first_use(rf):
    from django.core.exceptions import ImproperlyConfigured
    from django.views.generic import TemplateView

    from django_conditional.views import ConditionalTemplateMixin

    class Typo(ConditionalTemplateMixin, TemplateView):
        template_name = "unused.html"
        depends_on = ["testapp.Athor"]

    with pytest.raises(ImproperlyConfigured, match=r"Typo: depends_on names 'testapp\.Athor'"):
        Typo.as_view()(rf.get("/"))


def _returns_a_list(request):
    return list(Article.objects.all())


def _returns_the_object(request):
    return Article.objects.get()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(
            {"queryset": _returns_a_list},
            r"@conditional\(queryset=\.\.\.\) on tests\.test_conditional\.page: _returns_a_list "
            r"returned list \[<Article: A0>\]; expected a QuerySet, such as "
            r"Article\.objects\.filter\(\.\.\.\)\[:50\], not a list of its rows\.",
            id="queryset-list",
        ),
        pytest.param(
            {"object": _returns_the_object},
            r"@conditional\(object=\.\.\.\) on tests\.test_conditional\.page: _returns_the_object "
            r"returned Article <Article: A0>; expected a QuerySet that selects one row, such as "
            r"Article\.objects\.filter\(slug=slug\), not the object itself\.",
            id="object-instance",
        ),
    ],
)
def test_a_function_returning_no_queryset_is_a_type_error(rf, author, arguments, message):
    from django_conditional.decorators import conditional

    Article.objects.create(title="A0", author=author)

    def page(request):
        raise AssertionError("the view must not run")

    page.__qualname__ = "page"
    view = conditional(public=True, **arguments)(page)
    with pytest.raises(TypeError, match=message):
        view(rf.get("/"))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(
            {"queryset": [1, 2]},
            r"conditional\(queryset=\.\.\.\) takes a QuerySet or a function of the view's "
            r"arguments returning one, not list \[1, 2\]\.",
            id="queryset-list",
        ),
        pytest.param(
            {"object": "slug"},
            r"conditional\(object=\.\.\.\) takes a function of the view's arguments returning "
            r"a QuerySet that selects one row, not 'slug'",
            id="object-not-callable",
        ),
        pytest.param(
            {"depends_on": Author},
            r"conditional\(depends_on=\.\.\.\) takes a list of models or 'app_label\.ModelName' "
            r"strings, not one alone: write depends_on=\[Author\]\.",
            id="depends-on-one-model",
        ),
        pytest.param(
            {"salt": "theme"},
            r"conditional\(salt=\.\.\.\) takes a function of the request, not 'theme'",
            id="salt-not-callable",
        ),
    ],
)
def test_arguments_of_the_wrong_type_fail_at_once(arguments, message):
    from django_conditional.decorators import conditional

    with pytest.raises(TypeError, match=message):
        conditional(**arguments)


@pytest.mark.parametrize("path", ["/data/articles/", "/data/notes/", "/cbv/articles/"])
def test_a_missing_stamp_table_names_migrate(client, stamp_table_missing, caplog, path):
    from django.core.exceptions import ImproperlyConfigured

    expected = (
        "django_conditional cannot read its change stamps: the table "
        "django_conditional_changestamp does not exist in database 'default'. Run 'python "
        "manage.py migrate' (django_conditional's migration creates it)."
    )
    client.raise_request_exception = True
    with pytest.raises(ImproperlyConfigured) as raised:
        client.get(path)
    assert str(raised.value) == expected
    assert expected in [
        record.getMessage() for record in caplog.records if record.name == "django_conditional"
    ]


# --- Logging: every decision at DEBUG, the warm 304 included ----------------------------


@pytest.mark.parametrize("path", ["/data/articles/", "/cbv/articles/"])
def test_every_304_is_logged_at_debug(client, articles, caplog, path):
    first = client.get(path)
    with caplog.at_level(logging.DEBUG, logger="django_conditional"):
        assert revalidate(client, path, first).status_code == 304  # kept
        forget_validators()
        assert revalidate(client, path, first).status_code == 304  # derived again
    decisions = [r.getMessage() for r in caplog.records if r.getMessage().startswith("GET")]
    assert len(decisions) == 2
    for message, source in zip(
        decisions, ("kept in this process", "derived for this request"), strict=True
    ):
        assert message.startswith(
            f"GET {path}: 304 (If-None-Match matched the current representation); "
            f"validator etag={first['ETag']} last_modified="
        )
        assert message.endswith(f"; {source}")


def test_the_warm_304_formats_nothing_without_debug_logging(client, articles, monkeypatch):
    from django_conditional import engine

    first = client.get("/data/articles/")
    logged = []
    monkeypatch.setattr(engine, "log_revalidated", lambda *args, **kwargs: logged.append(args))
    logging.getLogger("django_conditional").setLevel(logging.INFO)
    try:
        assert revalidate(client, "/data/articles/", first).status_code == 304
    finally:
        logging.getLogger("django_conditional").setLevel(logging.NOTSET)
    assert logged == []


def test_a_list_view_whose_get_queryset_is_a_list_is_a_type_error(rf, articles):
    from django.views.generic import ListView

    from django_conditional.views import ConditionalListMixin

    class Listed(ConditionalListMixin, ListView):
        public = True

        def get_queryset(self):
            return list(Article.objects.all())

    with pytest.raises(TypeError) as raised:
        Listed.as_view()(rf.get("/"))
    assert str(raised.value) == (
        "tests.test_conditional.test_a_list_view_whose_get_queryset_is_a_list_is_a_type_error"
        ".<locals>.Listed.get_queryset() returned list; Listed derives its validator from a "
        "QuerySet. Set queryset or model, or return a QuerySet from get_queryset(), not a list."
    )
