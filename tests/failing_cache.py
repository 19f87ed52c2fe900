"""A local-memory cache that can be made to fail, as an unreachable Redis or Memcached does.

``FAILING.on = True`` makes every call raise ``ConnectionError`` (what redis-py and
pymemcache raise when the server is gone); the data kept so far survives, as a server's
does when only the network failed. Tests use it through ``failing_stamp_cache`` below.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache


class _Switch:
    # Process-wide: a server that is gone is gone for every thread.
    on = False
    calls = 0


FAILING = _Switch()


class FailingCache(BaseCache):
    """Local memory behind a switch; not a ``LocMemCache``, so it is treated as a shared cache."""

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)
        self._memory = LocMemCache(location, params)

    def _gate(self) -> LocMemCache:
        FAILING.calls += 1
        if FAILING.on:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")
        return self._memory

    def add(self, *args: Any, **kwargs: Any) -> Any:
        return self._gate().add(*args, **kwargs)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self._gate().get(*args, **kwargs)

    def set(self, *args: Any, **kwargs: Any) -> Any:
        return self._gate().set(*args, **kwargs)

    def touch(self, *args: Any, **kwargs: Any) -> Any:
        return self._gate().touch(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        return self._gate().delete(*args, **kwargs)

    def has_key(self, *args: Any, **kwargs: Any) -> Any:
        return self._gate().has_key(*args, **kwargs)

    def get_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._gate().get_many(*args, **kwargs)

    def set_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._gate().set_many(*args, **kwargs)

    def delete_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._gate().delete_many(*args, **kwargs)

    def incr(self, *args: Any, **kwargs: Any) -> Any:
        return self._gate().incr(*args, **kwargs)

    def clear(self) -> None:
        self._gate().clear()


FAILING_CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "v"},
    "stamps": {"BACKEND": "tests.failing_cache.FailingCache", "LOCATION": "failing"},
}


@contextmanager
def failing(on: bool = True) -> Iterator[None]:
    """Make the failing cache fail (or answer) inside the block."""
    before = FAILING.on
    FAILING.on = on
    try:
        yield
    finally:
        FAILING.on = before
