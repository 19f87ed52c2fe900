"""Where derived validators are kept: a map in this process, in front of ``CONDITIONAL_CACHE``.

A kept validator is stored with the stamps read before it was computed, and
used only while every one of those stamps is unchanged (DESIGN.md): a write
since, in any process, means one recomputation, wherever the entry came from.
That check is what makes a per-process copy safe with many processes, so the
warm 304 reads its entry from this process's memory instead of the shared
cache (a Redis round trip costs more than a whole Django request).

Entries of derivations with a queryset also go to the shared cache, so one
process's work serves the others; entries of stamps-only derivations
(``depends_on``) stay local, since recomputing them costs no more than a
shared-cache read. A shared cache that does not answer is passed over
(``store_health``'s breaker): validators are then computed from the
stamps, which is slower but as exact.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.cache import BaseCache, caches
from django.core.signals import setting_changed
from django.dispatch import receiver

from django_conditional import store_health
from django_conditional.conf import PREFIX, conf
from django_conditional.http import EntityTag
from django_conditional.stamps import date_is_settled, read_stamps
from django_conditional.validators import Validator

__all__ = ["Entry", "clear_local", "kept", "kept_entry", "lookup", "settle", "shared_key", "store"]

VariantKey = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Entry:
    """A derived validator and the stamps it was computed under."""

    alias: str
    tables: tuple[str, ...]
    stamps: tuple[int, ...]
    validator: Validator

    def to_shared(self) -> tuple[object, ...]:
        """A plain tuple (stable under pickling across deploys)."""
        etag = self.validator.etag
        assert etag is not None  # derived validators always have one
        last_modified = self.validator.last_modified
        return (
            _SHARED_FORMAT,
            self.alias,
            self.tables,
            self.stamps,
            etag.opaque,
            etag.weak,
            None if last_modified is None else last_modified.timestamp(),
            self.validator.last_modified_settled,
        )

    @classmethod
    def from_shared(cls, value: Any) -> Entry | None:
        """The entry a shared-cache value holds; None for anything else (an old format)."""
        if not (isinstance(value, tuple) and len(value) == 8 and value[0] == _SHARED_FORMAT):
            return None
        _format, alias, tables, stamps, opaque, weak, last_modified, settled = value
        validator = Validator(
            etag=EntityTag(opaque, weak=weak),
            last_modified=None
            if last_modified is None
            else dt.datetime.fromtimestamp(last_modified, tz=dt.timezone.utc),
            last_modified_settled=settled,
        )
        return cls(alias, tuple(tables), tuple(stamps), validator)


# The shared cache's entry format: (format, alias, tables, stamps, opaque
# tag, weak, Last-Modified timestamp, whether that date is settled).
_SHARED_FORMAT = 3

# Entries of this process, oldest first (dicts keep insertion order).
_local: dict[VariantKey, Entry] = {}
# Taken to add and evict; reads need no lock (a dict read is atomic).
_local_lock = threading.Lock()


def lookup(variant: VariantKey, *, shared: bool) -> Validator | None:
    """The kept validator of ``variant`` if its stamps are unchanged, else None.

    ``shared``: also look in ``CONDITIONAL_CACHE`` when this process has no
    current entry.
    """
    entry = _local.get(variant)
    current: tuple[int, ...] | None = None
    if entry is not None:
        current = read_stamps(entry.alias, entry.tables)
        if current == entry.stamps:
            validator = entry.validator
            if validator.last_modified_settled:
                return validator
            return _settle(variant, entry)
    if not shared:
        return None
    key = shared_key(variant)
    found = Entry.from_shared(_shared(lambda cache: cache.get(key)))
    if found is None:
        return None
    # The stamps just read serve again when the entry guards the same tables.
    same_tables = entry is not None and (entry.alias, entry.tables) == (found.alias, found.tables)
    if current is None or not same_tables:
        current = read_stamps(found.alias, found.tables)
    if current != found.stamps:
        return None
    _remember(variant, found)
    if not found.validator.last_modified_settled:
        return _settle(variant, found)
    return found.validator


def _settle(variant: VariantKey, entry: Entry) -> Validator:
    """The entry's validator, settled and kept so if the stamps just read show that it can be.

    The stamps equal the entry's, so the page is as it was when computed.
    """
    validator = settle(entry.alias, entry.validator)
    if validator is not entry.validator:
        _remember(variant, Entry(entry.alias, entry.tables, entry.stamps, validator))
    return validator


def settle(alias: str, validator: Validator) -> Validator:
    """``validator`` with its date settled when this thread's last stamp read shows it can be.

    For a validator of the page as it is now: this read's clock decides
    (``stamps.date_is_settled``).
    """
    last_modified = validator.last_modified
    if (
        validator.last_modified_settled
        or last_modified is None
        or not date_is_settled(alias, last_modified.timestamp())
    ):
        return validator
    return validator.settled()


def kept_entry(variant: VariantKey) -> Entry | None:
    """The entry this process last kept for ``variant``, current or not (to explain it)."""
    return _local.get(variant)


def kept(variant: VariantKey) -> Validator | None:
    """The validator this process last kept for ``variant``, current or not."""
    entry = _local.get(variant)
    return None if entry is None else entry.validator


def store(variant: VariantKey, entry: Entry, *, shared: bool) -> None:
    """Keep ``entry`` in this process, and in ``CONDITIONAL_CACHE`` when ``shared``."""
    _remember(variant, entry)
    if shared:
        key, value = shared_key(variant), entry.to_shared()
        _shared(lambda cache: cache.set(key, value, timeout=conf.cache_timeout))


def _shared(call: Callable[[BaseCache], Any]) -> Any:
    """``call(CONDITIONAL_CACHE)``, or None when it does not answer (entries are shortcuts)."""
    health = store_health.breaker(f"validator cache {conf.cache_alias!r} (CONDITIONAL_CACHE)")
    if not health.allow():
        return None
    try:
        value = call(caches[conf.cache_alias])
    except Exception as error:
        health.failed(error)
        return None
    health.succeeded()
    return value


def _remember(variant: VariantKey, entry: Entry) -> None:
    limit = conf.local_cache_size
    if limit <= 0:
        return
    with _local_lock:
        _local.pop(variant, None)
        while len(_local) >= limit:
            del _local[next(iter(_local))]
        _local[variant] = entry


def clear_local() -> None:
    """Forget this process's entries (the shared cache keeps its own)."""
    with _local_lock:
        _local.clear()


def shared_key(variant: Sequence[str]) -> str:
    """The ``CONDITIONAL_CACHE`` key of a variant: a keyed hash of its parts."""
    # Keyed too: a new SECRET_KEY must not find tags hashed under the old one.
    digest = hashlib.blake2b(key=conf.hash_key, digest_size=20, person=b"dj-cond-key")
    digest.update(conf.deploy_version.encode())
    for part in variant:
        data = part.encode()
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return f"django_conditional:v1:{digest.hexdigest()}"


@receiver(setting_changed)
def _clear_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    # Entries depend on the key, the stores and the deploy version.
    if setting.startswith(PREFIX) or setting in {"SECRET_KEY", "CACHES", "DATABASES"}:
        clear_local()
