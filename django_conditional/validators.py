"""Validators: an immutable entity tag plus an optional modification time.

Built here from plain values and keyed hashes; ``derivation`` builds them
from model instances, querysets and change stamps. Never reads a request.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from django_conditional.conf import conf
from django_conditional.http import EntityTag, Representation, entity_tag_from_value

__all__ = ["Validator", "keyed_tag", "to_utc"]


def to_utc(value: dt.datetime) -> dt.datetime:
    """An aware UTC datetime; naive values are read as UTC, as Django's ``condition`` does."""
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


@dataclass(frozen=True, slots=True)
class Validator:
    """The validators of one representation: an entity tag and a modification time.

    ``exists`` is False when the validator functions found nothing (both
    returned ``None``): RFC 9110's ``*`` then sees no current representation.
    A Django-style ``last_modified_func`` is trusted to be exact.
    """

    etag: EntityTag | None = None
    last_modified: dt.datetime | None = None
    exists: bool = True
    # False when Last-Modified is advisory only: some changes the entity tag
    # sees (deletions, writes to other models the page shows) do not move it,
    # so If-Modified-Since and If-Unmodified-Since are not evaluated against
    # it (RFC 9110 lets a server ignore them when it has no usable date).
    last_modified_is_exact: bool = True
    # The ETag field value, formatted once: every 304 sends it, and the
    # common revalidation is an If-None-Match equal to it.
    etag_header: str | None = field(init=False, repr=False, compare=False)
    _timestamp: float | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "etag_header", None if self.etag is None else str(self.etag))
        last_modified = self.last_modified
        object.__setattr__(
            self, "_timestamp", None if last_modified is None else last_modified.timestamp()
        )

    @classmethod
    def from_values(
        cls, etag: str | None = None, last_modified: dt.datetime | None = None
    ) -> Validator:
        """Build from what Django-style ``etag_func`` / ``last_modified_func`` return."""
        return cls(
            etag=None if etag is None else entity_tag_from_value(str(etag)),
            last_modified=None if last_modified is None else to_utc(last_modified),
            exists=etag is not None or last_modified is not None,
        )

    def last_modified_seconds(self, not_after: float) -> int | None:
        """Last-Modified in whole seconds, never later than ``not_after`` (the response's Date).

        RFC 9110 section 8.8.2.1: an origin server must not send a
        Last-Modified later than its Date, so a clock-skewed future value is
        clamped to it.
        """
        if self._timestamp is None:
            return None
        return int(min(self._timestamp, not_after))

    def representation(self, now: float) -> Representation:
        """The pure HTTP layer's view of this validator at time ``now``."""
        return Representation(
            etag=self.etag,
            last_modified=self.last_modified_seconds(now) if self.last_modified_is_exact else None,
            exists=self.exists,
        )


def keyed_tag(parts: Iterable[object], *, weak: bool) -> EntityTag:
    """An opaque entity tag: a keyed hash of ``parts``.

    Keyed by a key derived from ``SECRET_KEY``, so the tag reveals no
    primary keys, counts or versions and cannot be predicted. Each part is
    length-prefixed so that no two sequences of parts hash alike.
    """
    digest = hashlib.blake2b(key=conf.hash_key, digest_size=16, person=b"dj-cond-tag")
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    opaque = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    return EntityTag(opaque, weak=weak)
