"""RFC 9110 section 13 as tables: the pure HTTP layer, no Django involved."""

from __future__ import annotations

import pytest

from django_conditional.http import (
    MAX_ENTITY_TAGS,
    MAX_FIELD_LENGTH,
    EntityTag,
    EntityTagField,
    FieldState,
    Outcome,
    Representation,
    entity_tag_from_value,
    evaluate_if_range,
    evaluate_preconditions,
    format_http_date,
    parse_entity_tag,
    parse_entity_tag_field,
    parse_http_date,
    parse_preconditions,
)

A = EntityTag("a")
B = EntityTag("b")
WEAK_A = EntityTag("a", weak=True)

# 2001-09-09T01:46:40Z, and the same instant in the three HTTP-date forms.
LAST_MODIFIED = 1_000_000_000
LAST_MODIFIED_IMF = "Sun, 09 Sep 2001 01:46:40 GMT"
EARLIER_IMF = "Sat, 08 Sep 2001 01:46:40 GMT"
LATER_IMF = "Mon, 10 Sep 2001 01:46:40 GMT"
NOW = 1_800_000_000  # 2027-01-15, after every date above
FUTURE_IMF = format_http_date(NOW + 3600)


# --- Entity tags ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param('"a"', EntityTagField(FieldState.LIST, (A,)), id="strong"),
        pytest.param('W/"a"', EntityTagField(FieldState.LIST, (WEAK_A,)), id="weak"),
        pytest.param('"a", "b"', EntityTagField(FieldState.LIST, (A, B)), id="list"),
        pytest.param('"a","b"', EntityTagField(FieldState.LIST, (A, B)), id="list-no-space"),
        pytest.param(' \t"a" ,\t "b" ', EntityTagField(FieldState.LIST, (A, B)), id="list-ows"),
        pytest.param(
            '"a", , ,"b",', EntityTagField(FieldState.LIST, (A, B)), id="list-empty-members"
        ),
        pytest.param(
            '"a,b", "c"',
            EntityTagField(FieldState.LIST, (EntityTag("a,b"), EntityTag("c"))),
            id="comma-inside-quotes",
        ),
        pytest.param(
            '"a", W/"a"', EntityTagField(FieldState.LIST, (A, WEAK_A)), id="repeated-lines-joined"
        ),
        pytest.param('""', EntityTagField(FieldState.LIST, (EntityTag(""),)), id="empty-tag"),
        pytest.param('"\\"', EntityTagField(FieldState.LIST, (EntityTag("\\"),)), id="backslash"),
        pytest.param(
            '"caf\xe9"', EntityTagField(FieldState.LIST, (EntityTag("caf\xe9"),)), id="obs-text"
        ),
        pytest.param("*", EntityTagField(FieldState.ANY), id="any"),
        pytest.param(" * ", EntityTagField(FieldState.ANY), id="any-ows"),
        pytest.param('"a", *', EntityTagField(FieldState.LIST, (A,)), id="any-in-list-skipped"),
        pytest.param('junk, "a"', EntityTagField(FieldState.LIST, (A,)), id="junk-member-skipped"),
        pytest.param('"x"y, "a"', EntityTagField(FieldState.LIST, (A,)), id="glued-junk-skipped"),
        pytest.param('"a b", "a"', EntityTagField(FieldState.LIST, (A,)), id="space-in-tag"),
        pytest.param("", EntityTagField(FieldState.INVALID), id="empty"),
        pytest.param("a", EntityTagField(FieldState.INVALID), id="unquoted"),
        pytest.param('"a', EntityTagField(FieldState.INVALID), id="unterminated"),
        pytest.param('w/"a"', EntityTagField(FieldState.INVALID), id="lowercase-weak-prefix"),
        pytest.param('"""', EntityTagField(FieldState.INVALID), id="three-quotes"),
        pytest.param(b'"a"', EntityTagField(FieldState.LIST, (A,)), id="bytes"),
    ],
)
def test_parse_entity_tag_field(value, expected):
    assert parse_entity_tag_field(value) == expected


def test_parse_entity_tag_field_limits():
    at_limit = ", ".join(f'"{n}"' for n in range(MAX_ENTITY_TAGS))
    assert parse_entity_tag_field(at_limit).state is FieldState.LIST
    assert parse_entity_tag_field(at_limit + ', "x"').state is FieldState.TOO_LARGE
    assert parse_entity_tag_field("," * (MAX_FIELD_LENGTH + 1)).state is FieldState.TOO_LARGE
    assert parse_entity_tag_field('"' + "a" * (1024 * 1024)).state is FieldState.TOO_LARGE


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param('"a"', A, id="strong"),
        pytest.param('W/"a"', WEAK_A, id="weak"),
        pytest.param(' "a" ', A, id="ows"),
        pytest.param("a", None, id="unquoted"),
        pytest.param('"a", "b"', None, id="list"),
        pytest.param("*", None, id="any"),
    ],
)
def test_parse_entity_tag(value, expected):
    assert parse_entity_tag(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("abc", '"abc"', id="unquoted-is-quoted"),
        pytest.param('"abc"', '"abc"', id="quoted-kept"),
        pytest.param('W/"abc"', 'W/"abc"', id="weak-kept"),
        pytest.param("a b", '"a%20b"', id="space-escaped"),
        pytest.param('a"b', '"a%22b"', id="quote-escaped"),
        pytest.param("caf\xe9", '"caf\xe9"', id="obs-text-kept"),
        pytest.param("\u20ac5", '"%E2%82%AC5"', id="beyond-latin-1-escaped"),
        pytest.param("100%", '"100%"', id="percent-alone-kept"),
        pytest.param("100% x", '"100%25%20x"', id="percent-escaped-with-others"),
        pytest.param("", '""', id="empty"),
    ],
)
def test_entity_tag_from_value(value, expected):
    assert str(entity_tag_from_value(value)) == expected


@pytest.mark.parametrize(
    ("left", "right", "strong", "weak"),
    [
        pytest.param(A, A, True, True, id="strong-strong"),
        pytest.param(WEAK_A, A, False, True, id="weak-strong"),
        pytest.param(A, WEAK_A, False, True, id="strong-weak"),
        pytest.param(WEAK_A, WEAK_A, False, True, id="weak-weak"),
        pytest.param(A, B, False, False, id="different"),
    ],
)
def test_comparison_functions(left, right, strong, weak):
    """RFC 9110 section 8.8.3.2, including its example table."""
    assert left.strong_match(right) is strong
    assert left.weak_match(right) is weak


# --- HTTP-dates -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("Sun, 06 Nov 1994 08:49:37 GMT", 784111777, id="imf-fixdate"),
        pytest.param("Sunday, 06-Nov-94 08:49:37 GMT", 784111777, id="rfc850"),
        pytest.param("Sun Nov  6 08:49:37 1994", 784111777, id="asctime"),
        pytest.param("Sun Nov 16 08:49:37 1994", 784975777, id="asctime-two-digit-day"),
        pytest.param("  Sun, 06 Nov 1994 08:49:37 GMT\t", 784111777, id="ows"),
        pytest.param("sun, 06 nov 1994 08:49:37 gmt", 784111777, id="lowercase"),
        pytest.param("Tue, 30 Jun 2015 23:59:60 GMT", 1435708799, id="leap-second"),
        pytest.param("Thu, 29 Feb 2024 00:00:00 GMT", 1709164800, id="leap-day"),
        pytest.param(b"Sun, 06 Nov 1994 08:49:37 GMT", 784111777, id="bytes"),
        pytest.param("Mon, 32 Oct 2010 16:56:23 GMT", None, id="day-32"),
        pytest.param("Wed, 29 Feb 2023 00:00:00 GMT", None, id="not-a-leap-year"),
        pytest.param("Sun, 06 Nov 1994 24:00:00 GMT", None, id="hour-24"),
        pytest.param("Sun, 06 Nov 1994 08:60:00 GMT", None, id="minute-60"),
        pytest.param("Sun, 06 Foo 1994 08:49:37 GMT", None, id="bad-month"),
        pytest.param("Sun, 06 Nov 1994 08:49:37 UTC", None, id="not-gmt"),
        pytest.param("Sun, 06 Nov 1994 08:49:37", None, id="no-zone"),
        pytest.param("1994-11-06T08:49:37Z", None, id="iso-8601"),
        pytest.param("784111777", None, id="epoch-seconds"),
        pytest.param(
            "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT", None, id="list"
        ),
        pytest.param("", None, id="empty"),
        pytest.param("x" * 100_000, None, id="huge"),
        # Dates that cannot be represented are invalid, never an exception (RFC 9110
        # section 13.1.3: an invalid date is ignored). Year 0 raised ValueError in
        # calendar.timegm: a 500 on every conditional page.
        pytest.param("Sat, 01 Jan 0000 00:00:00 GMT", None, id="year-0"),
        pytest.param("Sat Jan  1 00:00:00 0000", None, id="asctime-year-0"),
        pytest.param("Sat, 01 Jan 99999 00:00:00 GMT", None, id="year-99999"),
        pytest.param("Fri, 31 Dec 9999 23:59:59 GMT", 253402300799, id="year-9999"),
        pytest.param("Mon, 01 Jan 0001 00:00:00 GMT", -62135596800, id="year-1"),
        pytest.param("Sun, 30 Feb 2020 00:00:00 GMT", None, id="february-30"),
        pytest.param("Sun, 00 Nov 1994 08:49:37 GMT", None, id="day-0"),
        pytest.param("Sun, 06 Nov 1994 08:49:61 GMT", None, id="second-61"),
        pytest.param("Sun, 06 Nov 1994 08:49:99 GMT", None, id="second-99"),
        pytest.param("Sun, 06 Nov " + "9" * 400 + " 08:49:37 GMT", None, id="400-digits"),
        pytest.param("Sun, \u0660\u0666 Nov 1994 08:49:37 GMT", None, id="arabic-indic-digits"),
        pytest.param("Sun, 06 Nov 1994 08:49:37 GMT\x00", None, id="nul"),
        pytest.param("Sun, 06 N\u0130v 1994 08:49:37 GMT", None, id="non-ascii-month"),
        pytest.param(b"Sun, 06 Nov 1994 08:49:37 GMT\xff", None, id="latin-1-byte"),
    ],
)
def test_parse_http_date(value, expected):
    assert parse_http_date(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("two_digit_year", "expected_year"),
    [
        pytest.param("27", 2027, id="this-year"),
        pytest.param("77", 2077, id="fifty-years-ahead-kept"),
        pytest.param("78", 1978, id="over-fifty-years-ahead-is-past"),
        pytest.param("99", 1999, id="last-century"),
        pytest.param("00", 2000, id="this-century"),
    ],
)
def test_rfc850_two_digit_years(two_digit_year, expected_year):
    """RFC 9110 section 5.6.7: a year over 50 years ahead is the latest past one."""
    parsed = parse_http_date(f"Friday, 01-Jan-{two_digit_year} 00:00:00 GMT", now=NOW)
    assert parsed is not None
    assert format_http_date(parsed).endswith(f" {expected_year} 00:00:00 GMT")


def test_format_http_date():
    assert format_http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT"


# --- Evaluation order (RFC 9110 section 13.2.2) ----------------------------

CURRENT = Representation(etag=A, last_modified=LAST_MODIFIED)
CURRENT_WEAK = Representation(etag=WEAK_A, last_modified=LAST_MODIFIED)
NO_ETAG = Representation(last_modified=LAST_MODIFIED)
NO_DATE = Representation(etag=A)
NO_VALIDATORS = Representation()
MISSING = Representation(exists=False)
UNSETTLED = Representation(etag=A, last_modified=LAST_MODIFIED, last_modified_settled=False)

PROCEED, NOT_MODIFIED, FAILED, TOO_LARGE = (
    Outcome.PROCEED,
    Outcome.NOT_MODIFIED,
    Outcome.PRECONDITION_FAILED,
    Outcome.FIELDS_TOO_LARGE,
)


def _row(method, headers, representation, outcome, field, row_id):
    return pytest.param(method, headers, representation, outcome, field, id=row_id)


EVALUATION_TABLE = [
    _row("GET", {}, CURRENT, PROCEED, None, "no-preconditions"),
    # Step 3: If-None-Match, weak comparison; 304 for GET/HEAD, 412 otherwise.
    _row("GET", {"if_none_match": '"a"'}, CURRENT, NOT_MODIFIED, "If-None-Match", "inm-match"),
    _row("HEAD", {"if_none_match": '"a"'}, CURRENT, NOT_MODIFIED, "If-None-Match", "inm-head"),
    _row("get", {"if_none_match": '"a"'}, CURRENT, NOT_MODIFIED, "If-None-Match", "inm-lower"),
    _row("GET", {"if_none_match": '"b"'}, CURRENT, PROCEED, None, "inm-no-match"),
    _row("GET", {"if_none_match": 'W/"a"'}, CURRENT, NOT_MODIFIED, "If-None-Match", "inm-weak"),
    _row(
        "GET", {"if_none_match": '"a"'}, CURRENT_WEAK, NOT_MODIFIED, "If-None-Match", "inm-vs-weak"
    ),
    _row("GET", {"if_none_match": '"b", "a"'}, CURRENT, NOT_MODIFIED, "If-None-Match", "inm-list"),
    _row("GET", {"if_none_match": "*"}, CURRENT, NOT_MODIFIED, "If-None-Match", "inm-any"),
    _row("GET", {"if_none_match": "*"}, MISSING, PROCEED, None, "inm-any-missing"),
    _row("GET", {"if_none_match": '"a"'}, NO_ETAG, PROCEED, None, "inm-no-current-etag"),
    _row("PUT", {"if_none_match": '"a"'}, CURRENT, FAILED, "If-None-Match", "inm-put"),
    _row("POST", {"if_none_match": '"a"'}, CURRENT, FAILED, "If-None-Match", "inm-post"),
    _row("DELETE", {"if_none_match": '"a"'}, CURRENT, FAILED, "If-None-Match", "inm-delete"),
    _row("PATCH", {"if_none_match": 'W/"a"'}, CURRENT, FAILED, "If-None-Match", "inm-patch"),
    _row("PUT", {"if_none_match": "*"}, CURRENT, FAILED, "If-None-Match", "inm-any-create-guard"),
    _row("PUT", {"if_none_match": "*"}, MISSING, PROCEED, None, "inm-any-create"),
    _row("PUT", {"if_none_match": "*"}, NO_VALIDATORS, FAILED, "If-None-Match", "inm-any-exists"),
    _row("GET", {"if_none_match": "junk"}, CURRENT, PROCEED, None, "inm-invalid"),
    # Step 4: If-Modified-Since, GET and HEAD only, only without If-None-Match.
    _row(
        "GET",
        {"if_modified_since": LAST_MODIFIED_IMF},
        CURRENT,
        NOT_MODIFIED,
        "If-Modified-Since",
        "ims-equal",
    ),
    _row(
        "HEAD",
        {"if_modified_since": LATER_IMF},
        CURRENT,
        NOT_MODIFIED,
        "If-Modified-Since",
        "ims-later",
    ),
    _row("GET", {"if_modified_since": EARLIER_IMF}, CURRENT, PROCEED, None, "ims-earlier"),
    _row("GET", {"if_modified_since": FUTURE_IMF}, CURRENT, PROCEED, None, "ims-future"),
    _row("GET", {"if_modified_since": "yesterday"}, CURRENT, PROCEED, None, "ims-invalid"),
    _row("GET", {"if_modified_since": LATER_IMF}, NO_DATE, PROCEED, None, "ims-no-last-mod"),
    _row("PUT", {"if_modified_since": LATER_IMF}, CURRENT, PROCEED, None, "ims-put-ignored"),
    _row("POST", {"if_modified_since": LATER_IMF}, CURRENT, PROCEED, None, "ims-post-ignored"),
    _row(
        "GET",
        {"if_modified_since": "Sunday, 09-Sep-01 01:46:40 GMT"},
        CURRENT,
        NOT_MODIFIED,
        "If-Modified-Since",
        "ims-rfc850",
    ),
    _row(
        "GET",
        {"if_modified_since": "Sun Sep  9 01:46:40 2001"},
        CURRENT,
        NOT_MODIFIED,
        "If-Modified-Since",
        "ims-asctime",
    ),
    _row(
        "GET",
        {"if_none_match": '"b"', "if_modified_since": LATER_IMF},
        CURRENT,
        PROCEED,
        None,
        "inm-beats-ims",
    ),
    _row(
        "GET",
        {"if_none_match": '"a"', "if_modified_since": EARLIER_IMF},
        CURRENT,
        NOT_MODIFIED,
        "If-None-Match",
        "inm-match-ims-stale",
    ),
    _row(
        "GET",
        {"if_none_match": "junk", "if_modified_since": LATER_IMF},
        CURRENT,
        PROCEED,
        None,
        "invalid-inm-still-disables-ims",
    ),
    # Step 1: If-Match, strong comparison.
    _row("PUT", {"if_match": '"a"'}, CURRENT, PROCEED, None, "im-match"),
    _row("PUT", {"if_match": '"b", "a"'}, CURRENT, PROCEED, None, "im-list"),
    _row("PUT", {"if_match": '"b"'}, CURRENT, FAILED, "If-Match", "im-no-match"),
    _row("PUT", {"if_match": 'W/"a"'}, CURRENT, FAILED, "If-Match", "im-weak-request"),
    _row("PUT", {"if_match": '"a"'}, CURRENT_WEAK, FAILED, "If-Match", "im-weak-current"),
    _row("PUT", {"if_match": '"a"'}, NO_ETAG, FAILED, "If-Match", "im-no-current-etag"),
    _row("PUT", {"if_match": "*"}, CURRENT, PROCEED, None, "im-any"),
    _row("PUT", {"if_match": "*"}, NO_ETAG, PROCEED, None, "im-any-no-etag-exists"),
    _row("PUT", {"if_match": "*"}, MISSING, FAILED, "If-Match", "im-any-missing"),
    _row("PUT", {"if_match": "junk"}, CURRENT, FAILED, "If-Match", "im-invalid"),
    _row("GET", {"if_match": '"b"'}, CURRENT, FAILED, "If-Match", "im-get"),
    _row("DELETE", {"if_match": '"a"'}, CURRENT, PROCEED, None, "im-delete"),
    # Step 2: If-Unmodified-Since, only without If-Match.
    _row("PUT", {"if_unmodified_since": LAST_MODIFIED_IMF}, CURRENT, PROCEED, None, "ius-equal"),
    _row("PUT", {"if_unmodified_since": LATER_IMF}, CURRENT, PROCEED, None, "ius-later"),
    _row(
        "PUT",
        {"if_unmodified_since": EARLIER_IMF},
        CURRENT,
        FAILED,
        "If-Unmodified-Since",
        "ius-earlier",
    ),
    _row(
        "GET",
        {"if_unmodified_since": EARLIER_IMF},
        CURRENT,
        FAILED,
        "If-Unmodified-Since",
        "ius-get",
    ),
    _row("PUT", {"if_unmodified_since": EARLIER_IMF}, NO_DATE, PROCEED, None, "ius-no-last-mod"),
    _row("PUT", {"if_unmodified_since": "Mon, 32 Oct"}, CURRENT, PROCEED, None, "ius-invalid"),
    _row(
        "PUT",
        {"if_match": '"a"', "if_unmodified_since": EARLIER_IMF},
        CURRENT,
        PROCEED,
        None,
        "im-pass-overrides-ius",
    ),
    _row(
        "PUT",
        {"if_match": '"b"', "if_unmodified_since": LATER_IMF},
        CURRENT,
        FAILED,
        "If-Match",
        "im-fail-ius-ignored",
    ),
    # Step order: 1/2 before 3/4.
    _row(
        "GET",
        {"if_match": '"a"', "if_none_match": '"a"'},
        CURRENT,
        NOT_MODIFIED,
        "If-None-Match",
        "im-pass-then-inm-304",
    ),
    _row(
        "GET",
        {"if_match": '"b"', "if_none_match": '"a"'},
        CURRENT,
        FAILED,
        "If-Match",
        "im-fail-before-inm",
    ),
    _row(
        "GET",
        {"if_unmodified_since": EARLIER_IMF, "if_modified_since": LATER_IMF},
        CURRENT,
        FAILED,
        "If-Unmodified-Since",
        "ius-fail-before-ims",
    ),
    # Methods that ignore preconditions (section 13.2.1).
    _row("OPTIONS", {"if_match": '"b"'}, CURRENT, PROCEED, None, "options-ignores"),
    _row("TRACE", {"if_none_match": '"a"'}, CURRENT, PROCEED, None, "trace-ignores"),
    _row("CONNECT", {"if_unmodified_since": EARLIER_IMF}, CURRENT, PROCEED, None, "connect"),
    # Fields too large to process (RFC 9110 section 5.4, RFC 6585 section 5).
    _row("GET", {"if_none_match": '"a",' * 5000}, CURRENT, TOO_LARGE, "If-None-Match", "inm-huge"),
    _row("PUT", {"if_match": '"a",' * 5000}, CURRENT, TOO_LARGE, "If-Match", "im-huge"),
    _row("OPTIONS", {"if_match": '"a",' * 5000}, CURRENT, PROCEED, None, "options-huge"),
    # A date not yet settled (the current second: a change later in it would not move
    # it) is never sent: the date alone proves nothing, If-Range cannot match it, and
    # If-Unmodified-Since at or after it cannot be shown true.
    _row(
        "GET", {"if_modified_since": LAST_MODIFIED_IMF}, UNSETTLED, PROCEED, None, "ims-unsettled"
    ),
    _row("GET", {"if_modified_since": LATER_IMF}, UNSETTLED, PROCEED, None, "ims-later-unsettled"),
    _row(
        "GET",
        {"if_none_match": '"a"', "if_modified_since": EARLIER_IMF},
        UNSETTLED,
        NOT_MODIFIED,
        "If-None-Match",
        "inm-decides-unsettled",
    ),
    _row(
        "PUT",
        {"if_unmodified_since": LAST_MODIFIED_IMF},
        UNSETTLED,
        FAILED,
        "If-Unmodified-Since",
        "ius-equal-unsettled",
    ),
    _row(
        "GET",
        {"if_unmodified_since": EARLIER_IMF},
        UNSETTLED,
        FAILED,
        "If-Unmodified-Since",
        "ius-earlier-unsettled",
    ),
    _row(
        "PUT", {"if_unmodified_since": LATER_IMF}, UNSETTLED, PROCEED, None, "ius-later-unsettled"
    ),
]


@pytest.mark.parametrize(
    ("method", "headers", "representation", "outcome", "field"), EVALUATION_TABLE
)
def test_evaluate_preconditions(method, headers, representation, outcome, field):
    preconditions = parse_preconditions(**headers, now=NOW)
    decision = evaluate_preconditions(method, preconditions, representation, now=NOW)
    assert decision.outcome is outcome
    assert decision.field == field
    assert decision.reason
    assert decision.is_short_circuit is (outcome is not PROCEED)


def test_preconditions_is_empty():
    assert parse_preconditions().is_empty
    # An invalid date is ignored, as if absent; an invalid tag list is not.
    assert parse_preconditions(if_modified_since="junk").is_empty
    assert not parse_preconditions(if_none_match="junk").is_empty


# --- If-Range (section 13.1.5) ----------------------------------------------


@pytest.mark.parametrize(
    ("value", "representation", "expected"),
    [
        pytest.param('"a"', CURRENT, True, id="strong-match"),
        pytest.param('"b"', CURRENT, False, id="strong-mismatch"),
        pytest.param('W/"a"', CURRENT, False, id="weak-request"),
        pytest.param('"a"', CURRENT_WEAK, False, id="weak-current"),
        pytest.param(LAST_MODIFIED_IMF, CURRENT, True, id="date-exact"),
        pytest.param(LATER_IMF, CURRENT, False, id="date-later"),
        pytest.param(EARLIER_IMF, CURRENT, False, id="date-earlier"),
        pytest.param(LAST_MODIFIED_IMF, NO_DATE, False, id="date-no-last-mod"),
        pytest.param(LAST_MODIFIED_IMF, UNSETTLED, False, id="date-unsettled"),
        pytest.param('"a"', UNSETTLED, True, id="strong-match-unsettled-date"),
        pytest.param("junk", CURRENT, False, id="junk"),
        pytest.param('"a"', MISSING, False, id="missing"),
        pytest.param(b'"a"', CURRENT, True, id="bytes"),
    ],
)
def test_evaluate_if_range(value, representation, expected):
    assert evaluate_if_range(value, representation) is expected
