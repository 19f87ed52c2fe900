"""Drive Django's WSGI handler directly: requests without a server or a test client.

A prepared environ goes straight into ``WSGIHandler``, so what is measured is
Django and the view, not the test client's request building and response
bookkeeping (which would cost more than the 304 it measures).

Two handlers in each process: the settings' own (no middleware at all, as
every way but the rule ways is measured) and one whose only middleware is
``ConditionalRulesMiddleware``. The empty view's floor is thus measured as
it always was, and in the same process and round as the same view through
the middleware.
"""

from __future__ import annotations

import gc
import io
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.db import connections
from django.db.backends.signals import connection_created
from django.http.response import HttpResponseBase

from benchmarks.configs import STORES
from django_conditional.conf import conf
from django_conditional.stamps import close_stamp_stores

__all__ = ["RULES_MIDDLEWARE", "Driver", "QueryCount", "count_queries", "use_store"]

# The middleware of the rule ways' handler. The benchmark has no session or
# authentication middleware for it to follow (its rule is for everyone).
RULES_MIDDLEWARE = ["django_conditional.middleware.ConditionalRulesMiddleware"]


def _write(data: bytes) -> None:
    return None


def _start_response(
    status: str, headers: list[tuple[str, str]], exc_info: Any = None, /
) -> Callable[[bytes], object]:
    return _write


def use_store(name: str) -> None:
    """Point the package's two settings at a store, as if they were in the settings file.

    Set on the settings object itself rather than through ``override_settings``,
    whose wrapper would slow every settings read of every configuration.
    """
    store = STORES[name]
    settings.CONDITIONAL_STAMP_CACHE = store.stamp_cache
    settings.CONDITIONAL_CACHE = store.validator_cache
    conf.clear()
    close_stamp_stores()


@dataclass
class QueryCount:
    """SQL statements and new database connections seen while counting."""

    queries: int = 0
    connections: int = 0


@contextmanager
def count_queries() -> Iterator[QueryCount]:
    """Count statements on every connection, and connections opened."""
    counted = QueryCount()

    def wrapper(
        execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: Any
    ) -> Any:
        counted.queries += 1
        return execute(sql, params, many, context)

    def on_connect(**kwargs: Any) -> None:
        counted.connections += 1

    wrapped = list(connections.all())
    for connection in wrapped:
        connection.execute_wrappers.append(wrapper)
    connection_created.connect(on_connect, weak=False)
    try:
        yield counted
    finally:
        connection_created.disconnect(on_connect)
        for connection in wrapped:
            connection.execute_wrappers.remove(wrapper)


def _handler(middleware: list[str]) -> WSGIHandler:
    """A WSGI handler whose middleware is ``middleware`` (read once, when it is built)."""
    saved = settings.MIDDLEWARE
    settings.MIDDLEWARE = middleware
    try:
        return WSGIHandler()
    finally:
        settings.MIDDLEWARE = saved


class Driver:
    """Sends GET requests to Django's WSGI handlers in this process."""

    def __init__(self) -> None:
        self.handler = WSGIHandler()
        self.rules_handler = _handler(RULES_MIDDLEWARE)

    def _pick(self, rules: bool) -> WSGIHandler:
        return self.rules_handler if rules else self.handler

    @staticmethod
    def environ(path: str, if_none_match: str | None = None) -> dict[str, Any]:
        """A GET for ``path`` as a WSGI server on 127.0.0.1 would pass it."""
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_ACCEPT": "text/html",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if if_none_match is not None:
            environ["HTTP_IF_NONE_MATCH"] = if_none_match
        return environ

    def request(self, environ: dict[str, Any], *, rules: bool = False) -> HttpResponseBase:
        """One request, its body read and the response closed (``request_finished`` sent).

        ``rules``: through ``ConditionalRulesMiddleware``.
        """
        response: HttpResponseBase = self._pick(rules)(dict(environ), _start_response)
        for _chunk in response:
            pass
        response.close()
        return response

    def batch(
        self, environ: dict[str, Any], count: int, expected_status: int, *, rules: bool = False
    ) -> float:
        """Seconds per request over ``count`` requests; every response must have the status."""
        handler = self._pick(rules)
        gc.collect()
        wrong = 0
        start = time.perf_counter()
        for _ in range(count):
            response = handler(dict(environ), _start_response)
            for _chunk in response:
                pass
            response.close()
            if response.status_code != expected_status:
                wrong += 1
        elapsed = time.perf_counter() - start
        if wrong:
            raise RuntimeError(
                f"{wrong} of {count} responses to {environ['PATH_INFO']} were not "
                f"{expected_status} (last: {response.status_code})."
            )
        return elapsed / count
