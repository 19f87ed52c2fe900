"""RFC 9110 section 13 conditional requests as plain data in, a decision out.

Standard library only: no Django, no ORM, no settings (an import-linter
contract keeps it so). Every parser here is total: whatever the input, it
returns a value in time linear in the input's size and never raises.
"""

from __future__ import annotations

import calendar
import enum
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import formatdate
from functools import lru_cache

__all__ = [
    "IGNORING_METHODS",
    "MAX_ENTITY_TAGS",
    "MAX_FIELD_LENGTH",
    "NOT_MODIFIED_BY_IF_NONE_MATCH",
    "READ_METHODS",
    "Decision",
    "EntityTag",
    "EntityTagField",
    "FieldState",
    "Outcome",
    "Preconditions",
    "Representation",
    "entity_tag_from_value",
    "evaluate_if_range",
    "evaluate_preconditions",
    "format_http_date",
    "parse_entity_tag",
    "parse_entity_tag_field",
    "parse_http_date",
    "parse_preconditions",
]

# A conditional field longer than this is "larger than the server wishes to
# process" (RFC 9110 section 5.4) and answered 431 (RFC 6585 section 5). Real
# clients send one or a handful of tags; servers such as gunicorn already
# refuse header lines over 8 KiB.
MAX_FIELD_LENGTH = 16 * 1024
# The most entity tags one If-Match / If-None-Match may list before it counts
# as too large; keeps the work per request bounded however the field is built.
MAX_ENTITY_TAGS = 256

# Methods for which a failed If-None-Match / If-Modified-Since means 304 rather
# than 412 (RFC 9110 section 13.2.2 steps 3 and 4).
READ_METHODS = frozenset({"GET", "HEAD"})
# Methods that neither select nor modify a representation: preconditions are
# ignored (RFC 9110 section 13.2.1).
IGNORING_METHODS = frozenset({"OPTIONS", "CONNECT", "TRACE"})

# etagc = "!" / %x23-7E / obs-text (RFC 9110 section 8.8.3)
_ETAGC = re.compile(r"[\x21\x23-\x7e\x80-\xff]*")
_MEMBER = re.compile(r'(W/)?"([^"]*)"')
_OWS = re.compile(r"[ \t]*")
_SEPARATORS = re.compile(r"[ \t,]*")
_NOT_ETAGC = re.compile(r"[^\x21\x23-\x24\x26-\x7e]")  # escaped by entity_tag_from_value


@dataclass(frozen=True, slots=True)
class EntityTag:
    """An entity tag (RFC 9110 section 8.8.3): an opaque string, weak or strong."""

    opaque: str
    weak: bool = False

    def __str__(self) -> str:
        return f'W/"{self.opaque}"' if self.weak else f'"{self.opaque}"'

    def strong_match(self, other: EntityTag) -> bool:
        """Strong comparison (section 8.8.3.2): both strong and the same opaque tag."""
        return not self.weak and not other.weak and self.opaque == other.opaque

    def weak_match(self, other: EntityTag) -> bool:
        """Weak comparison (section 8.8.3.2): the same opaque tag, weakness ignored."""
        return self.opaque == other.opaque


def parse_entity_tag(value: str) -> EntityTag | None:
    """Parse one entity tag such as ``"abc"`` or ``W/"abc"``; ``None`` if it is not one."""
    text = value.strip(" \t")
    match = _MEMBER.fullmatch(text)
    if match is None or _ETAGC.fullmatch(match[2]) is None:
        return None
    return EntityTag(match[2], weak=match[1] is not None)


def entity_tag_from_value(value: str) -> EntityTag:
    """Turn what a Django ``etag_func`` returns into an entity tag.

    Like Django's ``quote_etag``, a value that already is an entity tag (quoted,
    optionally ``W/``) is kept, and anything else is quoted. Unlike Django,
    characters an entity tag cannot hold (spaces, quotes, controls, non-ASCII)
    are percent-encoded, so the header we send is one clients can echo back.
    """
    tag = parse_entity_tag(value)
    if tag is not None:
        return tag
    if _ETAGC.fullmatch(value) is not None:
        return EntityTag(value)
    # "%" is escaped too once escaping starts, so distinct values stay distinct.
    escaped = "".join(
        "".join(f"%{byte:02X}" for byte in char.encode()) if _NOT_ETAGC.match(char) else char
        for char in value
    )
    return EntityTag(escaped)


class FieldState(enum.Enum):
    """What a received If-Match / If-None-Match field turned out to be."""

    LIST = "list"  # one or more valid entity tags
    ANY = "any"  # the field value "*"
    INVALID = "invalid"  # present, but no member is a valid entity tag
    TOO_LARGE = "too-large"  # over MAX_FIELD_LENGTH or MAX_ENTITY_TAGS


@dataclass(frozen=True, slots=True)
class EntityTagField:
    """A parsed If-Match or If-None-Match field."""

    state: FieldState
    tags: tuple[EntityTag, ...] = ()


_INVALID_FIELD = EntityTagField(FieldState.INVALID)
_TOO_LARGE_FIELD = EntityTagField(FieldState.TOO_LARGE)
_ANY_FIELD = EntityTagField(FieldState.ANY)


def parse_entity_tag_field(value: str | bytes) -> EntityTagField:
    """Parse an If-Match / If-None-Match value: ``*`` or a list of entity tags.

    Accepts what servers hand over: several header lines joined by commas,
    optional whitespace, empty list members and commas inside quoted tags.
    Members that are not entity tags are skipped, as Django and browsers do;
    a field with no valid member at all is ``INVALID``, which RFC 9110 treats
    as a list that matches nothing (section 13.1.1 step 3, 13.1.2 step 3).
    """
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if len(value) > MAX_FIELD_LENGTH:
        return _TOO_LARGE_FIELD
    if value.strip(" \t") == "*":
        return _ANY_FIELD
    tags: list[EntityTag] = []
    position = 0
    end = len(value)
    while True:
        position = _SEPARATORS.match(value, position).end()  # type: ignore[union-attr]
        if position >= end:
            break
        member = _MEMBER.match(value, position)
        after = -1 if member is None else _OWS.match(value, member.end()).end()  # type: ignore[union-attr]
        if member is None or (after < end and value[after] != ","):
            # A malformed member (a bare token, junk glued to a tag): skip to the next comma.
            next_comma = value.find(",", position if member is None else after)
            if next_comma < 0:
                break
            position = next_comma
            continue
        if _ETAGC.fullmatch(member[2]) is not None:
            if len(tags) == MAX_ENTITY_TAGS:
                return _TOO_LARGE_FIELD
            tags.append(EntityTag(member[2], weak=member[1] is not None))
        position = after
    if not tags:
        return _INVALID_FIELD
    return EntityTagField(FieldState.LIST, tuple(tags))


# --- HTTP-date (RFC 9110 section 5.6.7) ------------------------------------

_MAX_DATE_LENGTH = 64
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_SHORT_DAYS = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_LONG_DAYS = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_TIME = r"(?P<hour>\d\d):(?P<minute>\d\d):(?P<second>\d\d)"
_MONTH = r"(?P<month>[A-Za-z]{3})"
# re.ASCII: DIGIT and ALPHA are ASCII (RFC 5234); Unicode digits (Arabic-Indic
# zero, U+0660) would otherwise match \d and be read by int().
_FLAGS = re.IGNORECASE | re.ASCII
_IMF_FIXDATE = re.compile(
    rf"{_SHORT_DAYS}, (?P<day>\d\d) {_MONTH} (?P<year>\d{{4}}) {_TIME} GMT", _FLAGS
)
_RFC850_DATE = re.compile(
    rf"{_LONG_DAYS}, (?P<day>\d\d)-{_MONTH}-(?P<year>\d\d) {_TIME} GMT", _FLAGS
)
_ASCTIME_DATE = re.compile(
    rf"{_SHORT_DAYS} {_MONTH} (?P<day>[ \d]\d) {_TIME} (?P<year>\d{{4}})", _FLAGS
)


def parse_http_date(value: str | bytes, *, now: float | None = None) -> int | None:
    """Parse an HTTP-date in any of its three forms into seconds since the epoch.

    IMF-fixdate, the obsolete RFC 850 form and asctime are all accepted, as
    RFC 9110 section 5.6.7 requires of recipients. A two-digit year more than
    50 years ahead of ``now`` is read as the most recent past year with those
    digits. Anything else, including a list of dates, is ``None``.
    """
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if len(value) > _MAX_DATE_LENGTH:
        return None
    text = value.strip(" \t")
    match = (
        _IMF_FIXDATE.fullmatch(text)
        or _RFC850_DATE.fullmatch(text)
        or _ASCTIME_DATE.fullmatch(text)
    )
    if match is None:
        return None
    month = _MONTHS.get(match["month"].lower())
    if month is None:
        return None
    year = int(match["year"])
    if len(match["year"]) == 2:
        current_year = time.gmtime(time.time() if now is None else now).tm_year
        year += current_year - current_year % 100
        if year > current_year + 50:
            year -= 100
    day, hour, minute = int(match["day"].strip()), int(match["hour"]), int(match["minute"])
    second = int(match["second"])
    # Year 0 has no calendar (Python's dates start at year 1): a date that
    # cannot be represented is not a valid HTTP-date, and is ignored.
    if not (year >= 1 and hour < 24 and minute < 60 and second <= 60):
        return None
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    second = min(second, 59)  # a leap second (":60") reads as :59
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))


def format_http_date(seconds: float) -> str:
    """Format seconds since the epoch as an IMF-fixdate (RFC 9110 section 5.6.7)."""
    return _format_whole_seconds(math.floor(seconds))


@lru_cache(maxsize=1024)
def _format_whole_seconds(seconds: int) -> str:
    # Every 304 of a page repeats the same Last-Modified: format it once.
    return formatdate(seconds, usegmt=True)


# --- Preconditions and their evaluation (RFC 9110 section 13.2.2) ----------


@dataclass(frozen=True, slots=True)
class Preconditions:
    """The conditional fields of one request, parsed.

    ``None`` means the field was absent (or, for dates, not a valid HTTP-date,
    which RFC 9110 says to ignore). ``too_large`` names a field that was over
    the size limits.
    """

    if_match: EntityTagField | None = None
    if_none_match: EntityTagField | None = None
    if_modified_since: int | None = None
    if_unmodified_since: int | None = None
    too_large: str | None = None

    @property
    def is_empty(self) -> bool:
        """True when no precondition at all was received."""
        return (
            self.if_match is None
            and self.if_none_match is None
            and self.if_modified_since is None
            and self.if_unmodified_since is None
            and self.too_large is None
        )


def parse_preconditions(
    *,
    if_match: str | None = None,
    if_none_match: str | None = None,
    if_modified_since: str | None = None,
    if_unmodified_since: str | None = None,
    now: float | None = None,
) -> Preconditions:
    """Parse the raw values of the four precondition fields (``None`` when absent)."""
    parsed_if_match = None if if_match is None else parse_entity_tag_field(if_match)
    parsed_if_none_match = None if if_none_match is None else parse_entity_tag_field(if_none_match)
    too_large = None
    if parsed_if_match is not None and parsed_if_match.state is FieldState.TOO_LARGE:
        too_large = "If-Match"
    elif parsed_if_none_match is not None and parsed_if_none_match.state is FieldState.TOO_LARGE:
        too_large = "If-None-Match"
    return Preconditions(
        if_match=parsed_if_match,
        if_none_match=parsed_if_none_match,
        if_modified_since=_parse_optional_date(if_modified_since, now),
        if_unmodified_since=_parse_optional_date(if_unmodified_since, now),
        too_large=too_large,
    )


def _parse_optional_date(value: str | None, now: float | None) -> int | None:
    return None if value is None else parse_http_date(value, now=now)


@dataclass(frozen=True, slots=True)
class Representation:
    """What the server knows about the selected representation.

    ``exists`` answers RFC 9110's "has a current representation" (what ``*``
    tests); ``last_modified`` is in whole seconds since the epoch, as
    HTTP-dates are. A date that is not ``last_modified_settled`` (it is in
    the current second, so a change later in that second would not move
    it) is not sent: If-Modified-Since and If-Range cannot match it, and
    If-Unmodified-Since at or after it cannot be proven true.
    """

    etag: EntityTag | None = None
    last_modified: int | None = None
    exists: bool = True
    last_modified_settled: bool = True

    def was_modified_after(self, date: int) -> bool:
        """Whether this representation may have changed after ``date`` (If-Unmodified-Since)."""
        modified = self.last_modified
        if modified is None:
            return False
        return modified > date or (not self.last_modified_settled and modified >= date)

    def is_unmodified_since(self, date: int) -> bool:
        """Whether it certainly has not changed since ``date`` (If-Modified-Since)."""
        modified = self.last_modified
        return modified is not None and self.last_modified_settled and modified <= date


class Outcome(enum.Enum):
    """What the server must do with the request."""

    PROCEED = 200  # perform the method as if no precondition had been sent
    NOT_MODIFIED = 304
    PRECONDITION_FAILED = 412
    FIELDS_TOO_LARGE = 431


@dataclass(frozen=True, slots=True)
class Decision:
    """An outcome and why: the field that decided it and a sentence for logs and bodies."""

    outcome: Outcome
    reason: str
    field: str | None = None

    @property
    def is_short_circuit(self) -> bool:
        """True when the method must not be performed."""
        return self.outcome is not Outcome.PROCEED


# The decision of a GET or HEAD whose If-None-Match lists the current tag:
# the common revalidation, also reached without parsing (engine).
NOT_MODIFIED_BY_IF_NONE_MATCH = Decision(
    Outcome.NOT_MODIFIED, "If-None-Match matched the current representation", "If-None-Match"
)


def evaluate_preconditions(
    method: str,
    preconditions: Preconditions,
    representation: Representation,
    *,
    now: float | None = None,
) -> Decision:
    """Evaluate the preconditions in the order of RFC 9110 section 13.2.2.

    1. If-Match, else 2. If-Unmodified-Since: 412 when false.
    3. If-None-Match, else 4. If-Modified-Since (GET/HEAD only): when false,
       304 for GET and HEAD and 412 for every other method.
    5. If-Range is evaluated only where a Range request is served
       (:func:`evaluate_if_range`).

    Methods that neither select nor modify a representation (OPTIONS,
    CONNECT, TRACE) ignore preconditions (section 13.2.1). An If-Modified-Since
    later than ``now`` is ignored: it cannot come from a Last-Modified this
    server sent, and honouring it would pin a stale copy until that date.
    """
    method = method.upper()
    if method in IGNORING_METHODS:
        return Decision(Outcome.PROCEED, f"{method} ignores preconditions")
    if preconditions.too_large is not None:
        return Decision(
            Outcome.FIELDS_TOO_LARGE,
            f"{preconditions.too_large} is larger than the server processes",
            preconditions.too_large,
        )
    if preconditions.if_match is not None:
        if not _if_match_is_true(preconditions.if_match, representation):
            return Decision(
                Outcome.PRECONDITION_FAILED,
                "If-Match did not match the current entity tag",
                "If-Match",
            )
    elif preconditions.if_unmodified_since is not None and representation.was_modified_after(
        preconditions.if_unmodified_since
    ):
        return Decision(
            Outcome.PRECONDITION_FAILED,
            "the resource was modified after If-Unmodified-Since",
            "If-Unmodified-Since",
        )
    is_read = method in READ_METHODS
    if preconditions.if_none_match is not None:
        if not _if_none_match_is_true(preconditions.if_none_match, representation):
            if is_read:
                return NOT_MODIFIED_BY_IF_NONE_MATCH
            return Decision(
                Outcome.PRECONDITION_FAILED,
                "If-None-Match matched the current representation",
                "If-None-Match",
            )
    elif (
        is_read
        and preconditions.if_modified_since is not None
        and preconditions.if_modified_since <= (time.time() if now is None else now)
        and representation.is_unmodified_since(preconditions.if_modified_since)
    ):
        return Decision(
            Outcome.NOT_MODIFIED,
            "not modified since If-Modified-Since",
            "If-Modified-Since",
        )
    return Decision(Outcome.PROCEED, "preconditions passed")


def _if_match_is_true(field_value: EntityTagField, representation: Representation) -> bool:
    """RFC 9110 section 13.1.1: ``*`` needs a representation; a list, a strong match."""
    if field_value.state is FieldState.ANY:
        return representation.exists
    current = representation.etag
    if current is None or not representation.exists:
        return False
    return _any_match(field_value.tags, current, strong=True)


def _if_none_match_is_true(field_value: EntityTagField, representation: Representation) -> bool:
    """RFC 9110 section 13.1.2: ``*`` needs no representation; a list, no weak match."""
    if field_value.state is FieldState.ANY:
        return not representation.exists
    current = representation.etag
    if current is None or not representation.exists:
        return True
    return not _any_match(field_value.tags, current, strong=False)


def _any_match(tags: Iterable[EntityTag], current: EntityTag, *, strong: bool) -> bool:
    if strong:
        return any(tag.strong_match(current) for tag in tags)
    return any(tag.weak_match(current) for tag in tags)


def evaluate_if_range(value: str | bytes, representation: Representation) -> bool:
    """RFC 9110 section 13.1.5: may a Range request be served partially?

    True when the field holds an entity tag that strongly matches the
    current one, or an HTTP-date exactly equal to its Last-Modified. Only a
    view that actually serves Range requests should call this.
    """
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if len(value) > _MAX_DATE_LENGTH + MAX_FIELD_LENGTH:
        return False
    if not representation.exists:
        return False
    tag = parse_entity_tag(value)
    if tag is not None:
        return representation.etag is not None and tag.strong_match(representation.etag)
    date = parse_http_date(value)
    return (
        date is not None
        and representation.last_modified_settled
        and date == representation.last_modified
    )
