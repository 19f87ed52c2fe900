"""System checks: each id, and that ``manage.py check`` runs them."""

from __future__ import annotations

import types
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.urls import include, path
from django.views.generic import TemplateView

from django_conditional.checks import (
    check_caches,
    check_setting_ranges,
    check_setting_types,
    check_stamp_connections,
    check_stamp_table,
    check_stamp_tracking,
    check_unknown_settings,
    check_view_dependencies,
    connecting_per_request,
)
from django_conditional.conf import conf
from django_conditional.decorators import conditional
from django_conditional.views import ConditionalTemplateMixin


def test_no_messages_by_default():
    assert check_unknown_settings() == []
    assert check_setting_types() == []
    assert check_setting_ranges() == []
    assert check_view_dependencies() == []


def test_w001_unknown_setting(settings):
    settings.CONDITIONAL_DEBUG_HEADERS = True
    [message] = check_unknown_settings()
    assert message.id == "django_conditional.W001"
    assert "CONDITIONAL_DEBUG_HEADERS" in message.msg
    assert message.hint == "Did you mean CONDITIONAL_DEBUG_HEADER?"


def test_e001_wrong_type(settings):
    settings.CONDITIONAL_DEBUG_HEADER = "yes"
    [message] = check_setting_types()
    assert message.id == "django_conditional.E001"
    assert "'yes'" in message.msg


def test_manage_py_check_runs_the_checks(settings):
    settings.CONDITIONAL_DEBUG_HEADER = "yes"
    with pytest.raises(SystemCheckError, match=r"django_conditional\.E001"):
        call_command("check")


def test_conf_reads_cached_settings_and_follows_changes(settings):
    assert conf.debug_header is False
    settings.CONDITIONAL_DEBUG_HEADER = True
    assert conf.debug_header is True


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        pytest.param("CONDITIONAL_CACHE", 3, id="cache"),
        pytest.param("CONDITIONAL_CACHE_TIMEOUT", "60", id="timeout-str"),
        pytest.param("CONDITIONAL_CACHE_TIMEOUT", True, id="timeout-bool"),
        pytest.param("CONDITIONAL_DEPLOY_VERSION", 2, id="deploy-version"),
        pytest.param("CONDITIONAL_IGNORED_TABLES", "django_session", id="ignored-tables-str"),
        pytest.param("CONDITIONAL_IGNORED_TABLES", ["django_session", 3], id="ignored-table-int"),
        pytest.param("CONDITIONAL_STAMP_CACHE", ["redis"], id="stamp-cache"),
    ],
)
def test_e001_every_setting_type(settings, setting, value):
    setattr(settings, setting, value)
    [message] = check_setting_types()
    assert message.id == "django_conditional.E001"
    assert message.msg.startswith(f"{setting} is {value!r}; expected")


def test_e002_stamp_cache_not_in_caches(settings):
    settings.CONDITIONAL_STAMP_CACHE = "stamps"
    messages = check_caches()
    assert [m.id for m in messages] == ["django_conditional.E002"]
    assert messages[0].msg == "CONDITIONAL_STAMP_CACHE 'stamps' is not in CACHES."


def test_e003_validator_cache_not_in_caches(settings):
    settings.CONDITIONAL_CACHE = "validators"
    assert [m.id for m in check_caches()] == ["django_conditional.E003"]


def test_w002_stamps_in_a_per_process_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.CONDITIONAL_STAMP_CACHE = "default"
    [message] = check_caches()
    assert message.id == "django_conditional.W002"
    assert "per-process" in message.msg


def test_w003_stamps_in_a_dummy_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    settings.CONDITIONAL_STAMP_CACHE = "default"
    assert [m.id for m in check_caches()] == ["django_conditional.W003"]


def test_shared_stamp_cache_is_fine(settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "stamps": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://x",
        },
    }
    settings.CONDITIONAL_STAMP_CACHE = "stamps"
    assert check_caches() == []


@pytest.mark.django_db(transaction=True)
def test_conditional_touch_command():
    from io import StringIO

    from django_conditional.stamps import read_stamps

    before = read_stamps("default", ["testapp_note", "testapp_article"])
    out = StringIO()
    call_command("conditional_touch", "testapp.Note", stdout=out)
    after = read_stamps("default", ["testapp_note", "testapp_article"])
    assert after[0] != before[0]
    assert after[1] == before[1]
    assert "Moved the stamps of 1 table(s)" in out.getvalue()
    call_command("conditional_touch", "testapp", stdout=out)
    call_command("conditional_touch", "--all", stdout=out)
    assert read_stamps("default", ["testapp_article"])[0] != before[1]


@pytest.mark.parametrize(
    "args",
    [
        pytest.param((), id="nothing"),
        pytest.param(("nope",), id="unknown-app"),
        pytest.param(("testapp.Nope",), id="unknown-model"),
        pytest.param(("--all", "testapp"), id="both"),
    ],
)
def test_conditional_touch_errors(args):
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        call_command("conditional_touch", *args)


POSTGRES = {"ENGINE": "django.db.backends.postgresql", "NAME": "x"}


@pytest.mark.parametrize(
    ("database", "warned"),
    [
        pytest.param(POSTGRES, True, id="postgres-conn0"),
        pytest.param({**POSTGRES, "CONN_MAX_AGE": 60}, False, id="postgres-persistent"),
        pytest.param({**POSTGRES, "OPTIONS": {"pool": True}}, False, id="postgres-pooled"),
        pytest.param(
            {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
            False,
            id="sqlite",
        ),
    ],
)
def test_w004_which_databases_connect_per_request(database, warned):
    assert connecting_per_request({"default": database}) == (["default"] if warned else [])


def test_w004_is_reported_per_database(settings, monkeypatch):
    from django_conditional import checks

    monkeypatch.setattr(checks, "connecting_per_request", lambda databases: ["default"])
    [message] = check_stamp_connections()
    assert message.id == "django_conditional.W004"
    assert "'default'" in message.msg
    settings.CONDITIONAL_STAMP_CACHE = "default"
    assert check_stamp_connections() == []


REDIS = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://x"}


@pytest.mark.parametrize(
    ("stamp_cache", "tracking", "warned"),
    [
        pytest.param(REDIS, True, False, id="one-server"),
        pytest.param({**REDIS, "LOCATION": ["redis://x", "redis://y"]}, True, True, id="replicas"),
        pytest.param(
            {**REDIS, "LOCATION": ["redis://x", "redis://y"]}, False, False, id="tracking-off"
        ),
    ],
)
def test_w005_redis_stamps_that_cannot_be_mirrored(settings, stamp_cache, tracking, warned):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "stamps": stamp_cache,
    }
    settings.CONDITIONAL_STAMP_CACHE = "stamps"
    settings.CONDITIONAL_STAMP_TRACKING = tracking
    ids = [m.id for m in check_stamp_tracking()]
    assert ids == (["django_conditional.W005"] if warned else [])


TIMEOUTS = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}


@pytest.mark.parametrize(
    ("caches", "stamp_cache", "warned_aliases"),
    [
        pytest.param({"default": REDIS}, None, ["default"], id="validators-in-redis"),
        pytest.param(
            {"default": {**REDIS, "OPTIONS": TIMEOUTS}}, None, [], id="validators-with-timeouts"
        ),
        pytest.param(
            {"default": {**REDIS, "OPTIONS": TIMEOUTS}, "stamps": REDIS},
            "stamps",
            ["stamps"],
            id="stamps-in-redis",
        ),
        pytest.param(
            {"default": {**REDIS, "OPTIONS": {"socket_timeout": 1}}},
            None,
            ["default"],
            id="connect-timeout-missing",
        ),
        pytest.param(
            {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
            None,
            [],
            id="locmem",
        ),
    ],
)
def test_w007_redis_without_socket_timeouts(settings, caches, stamp_cache, warned_aliases):
    from django_conditional.checks import check_redis_timeouts

    settings.CACHES = caches
    settings.CONDITIONAL_STAMP_CACHE = stamp_cache
    messages = check_redis_timeouts()
    assert [m.id for m in messages] == ["django_conditional.W007"] * len(warned_aliases)
    for message, alias in zip(messages, warned_aliases, strict=True):
        assert f"Cache {alias!r} (Redis)" in message.msg
        assert "socket_connect_timeout" in message.hint


def test_conditional_touch_fails_when_the_stamp_table_is_missing(stamp_table_missing):
    from django.core.management import CommandError

    with pytest.raises(CommandError) as raised:
        call_command("conditional_touch", "testapp.Note")
    message = str(raised.value)
    assert message.startswith("Could not move the change stamps of testapp_note in 'default': ")
    assert message.endswith(
        "Run 'python manage.py migrate' (django_conditional's migration creates it)."
    )


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        pytest.param(
            "CONDITIONAL_LOCAL_CACHE_SIZE", -1, "0 or more entries (0 keeps none)", id="local-size"
        ),
        pytest.param(
            "CONDITIONAL_CACHE_TIMEOUT",
            -60,
            "0 or more seconds, or None to keep until evicted",
            id="timeout",
        ),
    ],
)
def test_e004_setting_out_of_range(settings, setting, value, expected):
    setattr(settings, setting, value)
    [message] = check_setting_ranges()
    assert message.id == "django_conditional.E004"
    assert message.msg == f"{setting} is {value!r}; expected {expected}."
    assert message.hint.startswith(f"Fix {setting} in your settings")


def test_e004_leaves_wrong_types_to_e001(settings):
    settings.CONDITIONAL_LOCAL_CACHE_SIZE = "-1"
    assert check_setting_ranges() == []


def _urlconf(*patterns):
    module = types.ModuleType("misconfigured_urls")
    module.urlpatterns = list(patterns)
    return module


class TypoList(ConditionalTemplateMixin, TemplateView):
    template_name = "unused.html"
    depends_on = ["testapp.Athor"]


def test_e005_class_based_view_with_a_depends_on_typo(settings):
    settings.ROOT_URLCONF = _urlconf(
        path("fine/", TemplateView.as_view()),
        path("nested/", include([path("typo/", TypoList.as_view())])),
        path("again/", TypoList.as_view()),
    )
    [message] = check_view_dependencies()
    assert message.id == "django_conditional.E005"
    assert message.msg.startswith(
        "tests.test_checks.TypoList: depends_on names 'testapp.Athor', which is not an "
        "installed model"
    )
    assert message.hint.startswith("Did you mean 'testapp.Author'?")


def test_e005_function_view_decorated_before_the_apps_were_ready(settings, monkeypatch):
    from django.apps import apps

    monkeypatch.setattr(apps, "ready", False)

    @conditional(depends_on=["testapp.Athor"])
    def page(request):
        raise AssertionError("not called by the check")

    monkeypatch.setattr(apps, "ready", True)
    settings.ROOT_URLCONF = _urlconf(path("page/", page))
    [message] = check_view_dependencies()
    assert message.id == "django_conditional.E005"
    assert "page: depends_on names 'testapp.Athor'" in message.msg


def test_e005_function_view_decorated_while_the_urlconf_loads(settings):
    class RaisingUrls(types.ModuleType):
        @property
        def urlpatterns(self):
            # Decorated on import of the URLconf, the app registry ready: it raises.
            @conditional(depends_on=["testapp.Athor"])
            def page(request): ...

            return [path("page/", page)]

    settings.ROOT_URLCONF = RaisingUrls("raising_urls")
    [message] = check_view_dependencies()
    assert message.id == "django_conditional.E005"
    assert "page: depends_on names 'testapp.Athor'" in message.msg


@pytest.mark.django_db(transaction=True)
def test_w006_stamp_table_missing(stamp_table_missing):
    [message] = check_stamp_table(databases=["default"])
    assert message.id == "django_conditional.W006"
    assert message.msg.startswith(
        "The stamp table django_conditional_changestamp does not exist in database 'default'"
    )
    assert (
        message.hint
        == "Run 'python manage.py migrate' (django_conditional's migration creates it)."
    )


@pytest.mark.django_db(transaction=True)
def test_w006_only_for_the_databases_checked_and_stamps_in_the_database(
    stamp_table_missing, settings
):
    assert check_stamp_table(databases=None) == []
    settings.CONDITIONAL_STAMP_CACHE = "default"
    assert check_stamp_table(databases=["default"]) == []


@pytest.mark.django_db(transaction=True)
def test_w006_is_run_by_check_database(stamp_table_missing):
    out = StringIO()
    call_command("check", "--database", "default", stderr=out, stdout=out)
    assert "django_conditional.W006" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_w006_is_silent_while_migrate_runs(stamp_table_missing):
    from django.core.management.commands.migrate import Command as Migrate

    seen = []

    class Recording(Migrate):
        def handle(self, *args, **options):
            seen.append(check_stamp_table(databases=["default"]))

    Recording().run_from_argv(["manage.py", "migrate"])
    assert seen == [[]]


@pytest.mark.django_db(transaction=True)
def test_no_w006_when_migrated():
    assert check_stamp_table(databases=["default"]) == []
