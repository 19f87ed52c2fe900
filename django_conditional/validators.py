"""Validators: an immutable entity tag plus an optional modification time.

Built here from plain values and keyed hashes; ``derivation`` builds them
from model instances, querysets and change stamps. Never reads a request.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import math
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

    ``last_modified`` is exact: every change the tag sees moves it (a
    Django-style ``last_modified_func`` is trusted to be). It is sent, and
    If-Modified-Since is evaluated against it, only once it is *settled*:
    in an earlier second than the response's Date and, for a date from
    change stamps, than the stamp store's clock when they were read
    (``stamp_clock``). HTTP dates have whole seconds, so a date within the
    current second could not tell a client's copy from a change later in
    that second.
    """

    etag: EntityTag | None = None
    last_modified: dt.datetime | None = None
    exists: bool = True
    # False for a stamp date the stamp store's clock had not yet left the
    # second of when its stamps were read.
    last_modified_settled: bool = True
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
        """The Last-Modified to send in whole seconds, or None when it is not settled.

        ``not_after`` is the response's Date: a date in its second or later
        is not sent (RFC 9110 section 8.8.2.1 forbids later ones; within
        the second, see the class docstring).
        """
        timestamp = self._timestamp
        if timestamp is None or not self.last_modified_settled:
            return None
        seconds = math.floor(timestamp)
        return seconds if seconds < math.floor(not_after) else None

    def representation(self, now: float) -> Representation:
        """The pure HTTP layer's view of this validator at time ``now``."""
        timestamp = self._timestamp
        if timestamp is None:
            return Representation(etag=self.etag, exists=self.exists)
        return Representation(
            etag=self.etag,
            last_modified=math.floor(timestamp),
            last_modified_settled=self.last_modified_seconds(now) is not None,
            exists=self.exists,
        )

    def settled(self) -> Validator:
        """This validator with its date settled (a read of its stamps showed it can be)."""
        if self.last_modified_settled:
            return self
        return Validator(self.etag, self.last_modified, self.exists, True)


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
