"""Session-wide test setup: Hypothesis profiles, the run's header, and backend checks.

A run that asks for PostgreSQL, MariaDB or Redis (see the README, "Running the tests
against PostgreSQL, MariaDB and Redis") aborts at once if that service does not answer:
a run that silently fell back or skipped would report a backend as tested when it was not.
Hooks only above the fixtures marker at the end of this file.
"""

from __future__ import annotations

import os
import platform
import shutil
import threading
from collections.abc import Callable, Generator, Iterator
from functools import partial
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import django
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.browser import Seen, skip_or_fail

# Short, because a service that is up answers in milliseconds; a firewalled port would
# otherwise hang the run for the driver's default (minutes for libpq).
CONNECT_TIMEOUT_SECONDS = 3

# pytest.exit's code for "the test environment is broken", distinct from 1 (tests failed)
# and 5 (no tests collected) so that CI logs say which one happened.
UNREACHABLE_EXIT_CODE = 3

CI_VALUES = {"1", "true", "yes"}


# Hypothesis -------------------------------------------------------------------------
# No deadline anywhere: a shared 2-core CI machine (or a database round trip) makes the
# 200 ms default flaky without finding bugs. In CI, more examples and a fixed seed so a
# failure reproduces from the log alone (print_blob); no example database to write.
hypothesis_settings.register_profile("default", deadline=None)
hypothesis_settings.register_profile(
    "ci",
    max_examples=500,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE")
    or ("ci" if os.environ.get("CI", "").lower() in CI_VALUES else "default")
)


# Header -----------------------------------------------------------------------------
def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which Python, Django, database and cache this run really uses."""
    lines = [
        f"django-conditional: Python {platform.python_version()} "
        f"({platform.python_implementation()}), Django {django.get_version()}"
    ]
    try:
        from django.conf import settings

        databases = settings.DATABASES
        caches = settings.CACHES
    except Exception as exc:  # settings not configured: say so rather than hide the header
        return [*lines, f"django-conditional: settings unavailable: {exc}"]
    lines.extend(f"database {alias!r}: {_describe_database(db)}" for alias, db in databases.items())
    lines.extend(f"cache {alias!r}: {_describe_cache(cache)}" for alias, cache in caches.items())
    return lines


def _describe_database(db: dict[str, Any]) -> str:
    engine = db["ENGINE"].rsplit(".", 1)[-1]
    if engine == "sqlite3":
        return "sqlite3, test database in memory"
    test_name = (db.get("TEST") or {}).get("NAME") or f"test_{db['NAME']}"
    where = f"{db.get('HOST') or 'localhost'}:{db.get('PORT') or 'default port'}"
    return f"{engine} at {where}, test database {test_name!r}"


def _describe_cache(cache: dict[str, Any]) -> str:
    backend = cache["BACKEND"].rsplit(".", 1)[-1]
    locations = [_without_password(location) for location in _cache_locations(cache)]
    return f"{backend} at {', '.join(locations)}" if locations else backend


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _cache_locations(cache: dict[str, Any]) -> list[str]:
    location = cache.get("LOCATION") or []
    if isinstance(location, str):
        location = location.split(",")
    return [item.strip() for item in location if item.strip()]


# Backend checks -----------------------------------------------------------------------
class ServiceUnreachable(Exception):
    """A service the settings ask for did not answer."""


@pytest.hookimpl(wrapper=True)
def pytest_sessionstart(session: pytest.Session) -> Generator[None, None, None]:
    """Abort the run (never skip) when a requested database or cache is unreachable.

    Runs after the other plugins' session start, so the header above is printed first
    and says which backend the run was pointed at.
    """
    yield
    from django.conf import settings

    results = [
        (name, *_probe(check))
        for name, check in _service_checks(settings.DATABASES, settings.CACHES)
    ]
    found = [f"{name}: {detail}" for name, ok, detail in results if ok]
    problems = [f"{name}: {detail}" for name, ok, detail in results if not ok]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        for line in found:
            reporter.write_line(f"reachable: {line}")
    if problems:
        pytest.exit(
            "a backend the settings ask for is unreachable, so this run would not test it:\n  "
            + "\n  ".join(problems)
            + "\nStart the service (README: 'Running the tests against PostgreSQL, MariaDB "
            "and Redis'), point PG*/MYSQL_*/REDIS_URL at it, or unset "
            "CONDITIONAL_TEST_DATABASE / CONDITIONAL_TEST_CACHE to use SQLite and locmem.",
            returncode=UNREACHABLE_EXIT_CODE,
        )


def _service_checks(
    databases: dict[str, dict[str, Any]], caches: dict[str, dict[str, Any]]
) -> Iterator[tuple[str, Callable[[], str]]]:
    for alias, db in databases.items():
        engine = db["ENGINE"].rsplit(".", 1)[-1]
        if engine in {"postgresql", "mysql"}:
            yield f"database {alias!r} ({engine})", partial(_check_database, alias)
    for alias, cache in caches.items():
        if "redis" in cache["BACKEND"].lower():
            for location in _cache_locations(cache):
                yield (
                    f"cache {alias!r} ({_without_password(location)})",
                    partial(_check_redis, location),
                )


def _probe(check: Callable[[], str]) -> tuple[bool, str]:
    """Run one check; any exception (driver missing, refused, timed out) means unreachable."""
    try:
        return True, check()
    except Exception as exc:
        return False, f"{type(exc).__name__}: {str(exc).strip()}"


def _check_database(alias: str) -> str:
    """Connect the way Django's test runner will, to the server and not to NAME.

    NAME=None makes Django's backends connect to the 'postgres' maintenance database
    (PostgreSQL) or to no database (MySQL), as they do to create the test database;
    NAME itself need not exist.
    """
    from django.db import connections
    from django.db.backends.base.base import NO_DB_ALIAS

    connection = connections[alias]
    # The same throwaway wrapper Django's own _nodb_cursor() builds.
    server = connection.__class__({**connection.settings_dict, "NAME": None}, alias=NO_DB_ALIAS)
    params = server.get_connection_params()
    params["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    raw = server.get_new_connection(params)
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT version()")
        (version,) = cursor.fetchone()
        cursor.close()
    finally:
        raw.close()
    return str(version).split(" on ")[0]


def _check_redis(location: str) -> str:
    try:
        import redis
    except ImportError as exc:
        raise ServiceUnreachable(
            'the redis package is not installed: pip install -e ".[test,redis]"'
        ) from exc
    client = redis.Redis.from_url(
        location,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=CONNECT_TIMEOUT_SECONDS,
    )
    try:
        return f"Redis {client.info('server')['redis_version']}"
    finally:
        client.close()


# Browser tests --------------------------------------------------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """With CONDITIONAL_REQUIRE_BROWSER=1 (CI), a skipped browser test is a failure.

    A safety net under the browser tests' own check: however such a test skips (no
    Chromium, no Playwright), CI must not pass without having driven a browser.
    """
    report = yield
    if (
        report.skipped
        and os.environ.get("CONDITIONAL_REQUIRE_BROWSER") == "1"
        and item.get_closest_marker("browser") is not None
        and not hasattr(report, "wasxfail")
    ):
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} was skipped ({_skip_reason(report)}), but "
            "CONDITIONAL_REQUIRE_BROWSER=1 requires browser tests to run. Install Chromium "
            "(apt-get install chromium) and the test extra, or unset the variable."
        )
    return report


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


# Fixtures for the package's tests go below this line. --------------------------------


class _FreshnessSummary:
    """Prints the freshness state machine's numbers (hit rate, stale 304s) after the run."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.lines:
            terminalreporter.section("freshness: stale 304s and hit rate")
            for line in self.lines:
                terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def freshness_report(pytestconfig: pytest.Config) -> list[str]:
    """Lines for the end-of-run summary; a plugin object, since hooks belong above the marker."""
    summary = _FreshnessSummary()
    pytestconfig.pluginmanager.register(summary, "freshness-summary")
    return summary.lines


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    """Each test starts with no validator kept in this process and no stamp connection open."""
    from django_conditional import rule_counts
    from django_conditional.rules import forget_rules
    from django_conditional.stamps import close_stamp_stores
    from django_conditional.validator_cache import clear_local

    clear_local()
    forget_rules()
    rule_counts.discard()
    yield
    clear_local()
    forget_rules()
    rule_counts.discard()
    close_stamp_stores()


@pytest.fixture
def async_client(async_client: Any) -> Iterator[Any]:
    """pytest-django's, closing the database connection of sync_to_async's worker thread after.

    The views' ORM work runs in that thread, whose connection outlives the test
    otherwise: PostgreSQL then refuses to drop the test database.
    """
    yield async_client
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import connections

    # Its single thread-sensitive executor: the thread the test's views ran in.
    asyncio.run(sync_to_async(connections.close_all)())


def forget_validators() -> None:
    """Evict every kept validator: this process's and the shared cache's."""
    from django.core.cache import caches

    from django_conditional.conf import conf
    from django_conditional.validator_cache import clear_local

    caches[conf.cache_alias].clear()
    clear_local()


def age_stamps(seconds: float = 10.0) -> None:
    """Date every change stamp ``seconds`` earlier, as if the writes so far were that old.

    A Last-Modified is sent only once the stamp store's clock has left its second
    (``django_conditional.stamp_clock``): a test that wants the date right after its
    setup writes ages them instead of sleeping into the next second. Inside a test's
    transaction a date must also be older than the transaction (its snapshot): hence
    the default's margin over slow fixtures. Kept validators are then recomputed
    (their stamps changed).
    """
    from django.apps import apps
    from django.core.cache import caches
    from django.db import connections

    from django_conditional.stamp_clock import TOKEN_SPAN
    from django_conditional.stamp_tracking import TrackedRedisStampStore
    from django_conditional.stamps import (
        STAMP_KEY_PREFIX,
        CacheStampStore,
        DatabaseStampStore,
        ProcessStampStore,
        get_stamp_store,
        read_stamps,
    )
    from django_conditional.tables import deletion_stamp, model_tables

    shift = int(seconds * 1000) * TOKEN_SPAN
    store = get_stamp_store()
    # Every table gets its stamp first: a first read would date it now.
    tables = {
        stamp
        for model in apps.get_models(include_auto_created=True)
        for table in model_tables(model)
        for stamp in (table, deletion_stamp(table))
    }
    for connection in connections.all(initialized_only=True):
        read_stamps(connection.alias, sorted(tables))
    if isinstance(store, DatabaseStampStore):
        for connection in connections.all(initialized_only=True):
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE django_conditional_changestamp SET token = token - %s", [shift]
                )
    elif isinstance(store, ProcessStampStore):
        for tokens in store._tokens.values():
            for table in tokens:
                tokens[table] -= shift
    elif isinstance(store, CacheStampStore | TrackedRedisStampStore):
        cache = caches[store.cache_alias]
        client = cache._cache.get_client(write=True)
        for key in client.scan_iter(match=f"{cache.make_key(STAMP_KEY_PREFIX)}*"):
            client.set(key, int(client.get(key)) - shift)
        if isinstance(store, TrackedRedisStampStore):
            store.close()
    else:  # pragma: no cover - a store this helper does not know
        raise TypeError(f"age_stamps() does not know {type(store).__name__}")


@pytest.fixture
def stamp_table_missing(transactional_db: None) -> Iterator[None]:
    """The stamp table is gone for the test, as before ``migrate``; back afterwards."""
    from django.db import connection

    from django_conditional.stamp_errors import STAMP_TABLE

    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {quote(STAMP_TABLE)} RENAME TO {quote('hidden_stamps')}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {quote('hidden_stamps')} RENAME TO {quote(STAMP_TABLE)}")


# Browser tests (tests/browser.py) ---------------------------------------------------


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    path = shutil.which("chromium")
    if path is None:
        skip_or_fail("Debian's chromium is not on PATH (apt-get install chromium)")
    return str(path)


@pytest.fixture(scope="session")
def sync_playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail('Playwright is not installed (pip install -e ".[test]")')
    return sync_playwright


@pytest.fixture
def server_log(live_server) -> Iterator[list[Seen]]:
    """Exchanges on the live server, recorded by wrapping its WSGI application.

    The server's view is the one that counts: Chromium reports a revalidated page
    to Playwright with the status of the cached 200 it reused, and its cache adds
    If-None-Match below the page's own request.
    """
    seen: list[Seen] = []
    lock = threading.Lock()
    httpd = live_server.thread.httpd
    application = httpd.get_app()

    def recording_application(environ: dict[str, Any], start_response: Any) -> Any:
        def recording_start_response(status: str, headers: Any, *args: Any) -> Any:
            with lock:
                seen.append(
                    Seen(
                        environ["PATH_INFO"],
                        environ.get("HTTP_IF_NONE_MATCH"),
                        int(status.split(" ", 1)[0]),
                    )
                )
            return start_response(status, headers, *args)

        return application(environ, recording_start_response)

    httpd.set_app(recording_application)
    try:
        yield seen
    finally:
        httpd.set_app(application)
