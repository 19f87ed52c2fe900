"""Property-based tests: the parsers are total and round-trip what we format."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from django_conditional.http import (
    MAX_FIELD_LENGTH,
    EntityTag,
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

# Header values as a WSGI server hands them over: latin-1 decoded bytes.
header_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=300)
# Text biased towards the characters that steer the parsers.
tricky_text = st.text(alphabet=st.sampled_from('"W/, \t*ab\\\x00\xff'), max_size=300)
etagc_text = st.text(
    alphabet=st.sampled_from(
        [chr(c) for c in range(0x21, 0x7F) if c != 0x22] + [chr(c) for c in range(0x80, 0x100)]
    ),
    max_size=20,
)
entity_tags = st.builds(EntityTag, etagc_text, st.booleans())
methods = st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"])
epoch_seconds = st.integers(min_value=0, max_value=253402300799)  # up to 9999-12-31


@given(st.one_of(header_text, tricky_text, st.binary(max_size=300)))
def test_entity_tag_field_parser_is_total(value):
    parsed = parse_entity_tag_field(value)
    assert parsed.state in set(FieldState)
    assert (parsed.state is FieldState.LIST) == bool(parsed.tags)
    for tag in parsed.tags:
        assert parse_entity_tag(str(tag)) == tag


@given(st.one_of(header_text, tricky_text))
def test_entity_tag_field_parser_is_total_on_long_input(value):
    """Repeating a hostile pattern up to the size limit still parses, never raises."""
    repeated = (value or ",") * (MAX_FIELD_LENGTH // max(len(value), 1))
    assert parse_entity_tag_field(repeated[:MAX_FIELD_LENGTH]).state in set(FieldState)


@given(st.lists(entity_tags, min_size=1, max_size=50), st.sampled_from([",", ", ", " ,\t"]))
def test_entity_tag_list_round_trip(tags, separator):
    parsed = parse_entity_tag_field(separator.join(str(tag) for tag in tags))
    assert parsed.state is FieldState.LIST
    assert parsed.tags == tuple(tags)


@given(st.text(max_size=100))
def test_entity_tag_from_any_value_is_valid_and_stable(value):
    tag = entity_tag_from_value(value)
    assert parse_entity_tag(str(tag)) == tag
    assert entity_tag_from_value(str(tag)) == tag


@given(st.one_of(header_text, tricky_text, st.binary(max_size=100)))
def test_http_date_parser_is_total(value):
    parsed = parse_http_date(value)
    assert parsed is None or isinstance(parsed, int)


@given(epoch_seconds)
def test_http_date_round_trip(seconds):
    assert parse_http_date(format_http_date(seconds)) == seconds


@given(
    methods,
    st.one_of(st.none(), header_text, tricky_text),
    st.one_of(st.none(), header_text, tricky_text),
    st.one_of(st.none(), header_text, epoch_seconds.map(format_http_date)),
    st.one_of(st.none(), header_text, epoch_seconds.map(format_http_date)),
    st.one_of(st.none(), entity_tags),
    st.one_of(st.none(), epoch_seconds),
    st.booleans(),
)
def test_evaluation_is_total_and_follows_method_class(
    method, if_match, if_none_match, ims, ius, etag, last_modified, exists
):
    preconditions = parse_preconditions(
        if_match=if_match,
        if_none_match=if_none_match,
        if_modified_since=ims,
        if_unmodified_since=ius,
    )
    representation = Representation(etag=etag, last_modified=last_modified, exists=exists)
    decision = evaluate_preconditions(method, preconditions, representation)
    if method in {"OPTIONS", "TRACE"}:
        assert decision.outcome is Outcome.PROCEED
    if decision.outcome is Outcome.NOT_MODIFIED:
        assert method in {"GET", "HEAD"}
    if if_match is None and if_none_match is None and ius is None:
        assert decision.outcome in {Outcome.PROCEED, Outcome.NOT_MODIFIED}


@given(
    st.one_of(header_text, tricky_text, st.binary(max_size=100)), st.one_of(st.none(), entity_tags)
)
def test_if_range_is_total(value, etag):
    assert evaluate_if_range(value, Representation(etag=etag)) in {True, False}


# Every field of the three HTTP-date forms, each drawn in and far out of its range.
_field = st.integers(min_value=0, max_value=10**6).map(str)
_digits = st.one_of(_field, st.text(alphabet="0123456789", min_size=1, max_size=400))
_day_names = st.sampled_from(["Mon", "Sun", "Monday", "Sunday", "Xyz", ""])
_months = st.sampled_from(["Jan", "Feb", "feb", "Dec", "Foo", "\u0130an", ""])


@st.composite
def date_fields(draw: st.DrawFn) -> str:
    """Date-like field values in all three forms, every part possibly out of range."""
    day, year = draw(_digits), draw(_digits)
    hour, minute, second = draw(_digits), draw(_digits), draw(_digits)
    name, month = draw(_day_names), draw(_months)
    time_part = f"{hour}:{minute}:{second}"
    form = draw(st.sampled_from(["imf", "rfc850", "asctime"]))
    if form == "imf":
        value = f"{name}, {day} {month} {year} {time_part} GMT"
    elif form == "rfc850":
        value = f"{name}, {day}-{month}-{year} {time_part} GMT"
    else:
        value = f"{name} {month} {day:>2} {time_part} {year}"
    return value + draw(st.sampled_from(["", " ", "\x00", "\xff", ", x"]))


@given(date_fields())
def test_http_date_parser_never_raises_on_out_of_range_fields(value):
    parsed = parse_http_date(value)
    # A date it returns is one it can also format: representable, and stable.
    if parsed is not None:
        assert parse_http_date(format_http_date(parsed)) == parsed
