"""The warm 304: answering a revalidation without parsing, and deciding as the RFC's order does.

``engine.answer_revalidation`` answers only a GET/HEAD whose If-None-Match is
exactly the current tag as sent, with no If-Match or If-Unmodified-Since;
anything else goes to the full evaluation. The tests check both halves: the
table of what it answers, and (by property) that whenever it answers, the
full evaluation would have answered the same 304 with the same fields.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import DisallowedHost
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from hypothesis import given
from hypothesis import strategies as st

from django_conditional import engine
from django_conditional.engine import ResponseOptions
from django_conditional.http import EntityTag, Outcome
from django_conditional.validators import Validator

rf = RequestFactory()

WEAK = Validator(etag=EntityTag("abc", weak=True))
STRONG = Validator(
    etag=EntityTag("abc"),
    last_modified=dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
)
DATE = "Tue, 02 Jan 2024 03:04:05 GMT"


@pytest.mark.parametrize(
    ("method", "headers", "validator", "answers"),
    [
        pytest.param("GET", {"if-none-match": 'W/"abc"'}, WEAK, True, id="get-weak"),
        pytest.param("HEAD", {"if-none-match": '"abc"'}, STRONG, True, id="head-strong"),
        pytest.param(
            "GET",
            {"if-none-match": '"abc"', "if-modified-since": DATE},
            STRONG,
            True,
            id="if-modified-since-ignored",
        ),
        pytest.param("GET", {}, WEAK, False, id="no-field"),
        pytest.param("GET", {"if-none-match": '"other"'}, WEAK, False, id="other-tag"),
        pytest.param("GET", {"if-none-match": '"x", W/"abc"'}, WEAK, False, id="list"),
        pytest.param("GET", {"if-none-match": "*"}, WEAK, False, id="star"),
        pytest.param("GET", {"if-none-match": '"abc"'}, WEAK, False, id="strong-form-of-weak"),
        pytest.param("GET", {"if-none-match": 'W/"abc"'}, STRONG, False, id="weak-form-of-strong"),
        pytest.param(
            "GET",
            {"if-none-match": '"abc"', "if-match": '"abc"'},
            STRONG,
            False,
            id="with-if-match",
        ),
        pytest.param(
            "GET",
            {"if-none-match": '"abc"', "if-unmodified-since": DATE},
            STRONG,
            False,
            id="with-if-unmodified-since",
        ),
        pytest.param("POST", {"if-none-match": '"abc"'}, STRONG, False, id="post"),
        pytest.param("PUT", {"if-none-match": '"abc"'}, STRONG, False, id="put"),
        pytest.param("DELETE", {"if-none-match": '"abc"'}, STRONG, False, id="delete"),
        pytest.param("OPTIONS", {"if-none-match": '"abc"'}, STRONG, False, id="options"),
        pytest.param(
            "GET",
            {"if-none-match": '"abc"'},
            Validator(last_modified=STRONG.last_modified),
            False,
            id="no-tag",
        ),
    ],
)
def test_what_is_answered_without_parsing(method, headers, validator, answers):
    request = rf.generic(method, "/", headers=headers)
    response = engine.answer_revalidation(request, validator, ResponseOptions())
    assert (response is not None) is answers
    if answers:
        assert response.status_code == 304
        assert response["ETag"] == str(validator.etag)


OPTIONS = [
    ResponseOptions(),
    ResponseOptions(cache_control={"max_age": 60, "public": True}, vary=["Accept-Language"]),
    ResponseOptions(cache_control={"no_cache": True}).per_user(),
    ResponseOptions(vary=["Accept", "Cookie"]).per_user(),
]
TAGS = ['"abc"', 'W/"abc"', '"other"', "*", '"x", W/"abc"', "", "garbage"]
DATES = [DATE, "Mon, 01 Jan 2024 00:00:00 GMT", "Fri, 01 Jan 2100 00:00:00 GMT", "not a date"]


def _full_evaluation(request, validator, options):
    """check_preconditions with the shortcut turned off."""
    now = 1_800_000_000.0
    decision = engine.evaluate(request, validator, now=now)
    if not decision.is_short_circuit:
        return None
    return engine.short_circuit_response(request, decision, validator, now=now, options=options)


@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]),
    if_none_match=st.none() | st.sampled_from(TAGS),
    if_match=st.none() | st.sampled_from(TAGS),
    if_modified_since=st.none() | st.sampled_from(DATES),
    if_unmodified_since=st.none() | st.sampled_from(DATES),
    validator=st.sampled_from([WEAK, STRONG]),
    options=st.sampled_from(OPTIONS),
)
def test_the_shortcut_decides_as_the_full_evaluation(
    method, if_none_match, if_match, if_modified_since, if_unmodified_since, validator, options
):
    headers = {
        name: value
        for name, value in {
            "if-none-match": if_none_match,
            "if-match": if_match,
            "if-modified-since": if_modified_since,
            "if-unmodified-since": if_unmodified_since,
        }.items()
        if value is not None
    }
    request = rf.generic(method, "/", headers=headers)
    shortcut = engine.answer_revalidation(request, validator, options, now=1_800_000_000.0)
    if shortcut is None:
        return
    full = _full_evaluation(request, validator, options)
    assert full is not None
    assert full.status_code == shortcut.status_code == 304
    assert dict(full.items()) == dict(shortcut.items())


@pytest.mark.parametrize("options", OPTIONS)
def test_the_304_carries_the_fields_the_200_gets(options):
    """Cache-Control and Vary worked out once, as Django's functions put them on a fresh 200."""
    now = 1_800_000_000.0
    ok = HttpResponse("page")
    engine.apply_representation_headers(
        ok, STRONG, now=now, cache_control=options.cache_control, vary=options.vary
    )
    not_modified = options.not_modified(STRONG, now)
    for name in ("ETag", "Last-Modified", "Cache-Control", "Vary"):
        assert not_modified.get(name) == ok.get(name), name
    assert "Content-Length" not in not_modified
    assert "Content-Type" not in not_modified


def test_a_304_sends_no_last_modified_later_than_now():
    future = Validator(
        etag=EntityTag("a"), last_modified=dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)
    )
    response = ResponseOptions().not_modified(future, now=0.0)
    assert not response.has_header("Last-Modified")


def test_check_preconditions_names_the_decision_either_way():
    request = rf.get("/", headers={"if-none-match": 'W/"abc"'})
    early = engine.check_preconditions(request, WEAK, ResponseOptions())
    listed = rf.get("/", headers={"if-none-match": '"x", W/"abc"'})
    parsed = engine.check_preconditions(listed, WEAK, ResponseOptions())
    assert early is not None
    assert parsed is not None
    assert early.decision == parsed.decision
    assert early.decision.outcome is Outcome.NOT_MODIFIED


# --- The variant key's host --------------------------------------------------------------


@override_settings(ALLOWED_HOSTS=["good.example"])
def test_a_disallowed_host_is_refused_every_time():
    bad = rf.get("/", HTTP_HOST="evil.example")
    for _ in range(2):
        with pytest.raises(DisallowedHost):
            engine.variant_key(bad, "view", ())
    good = rf.get("/", HTTP_HOST="good.example")
    assert engine.variant_key(good, "view", ())[1] == "good.example"


def test_changing_allowed_hosts_forgets_validated_hosts():
    request = rf.get("/", HTTP_HOST="site.example")
    with override_settings(ALLOWED_HOSTS=["site.example"]):
        assert engine.variant_key(request, "view", ())[1] == "site.example"
    with override_settings(ALLOWED_HOSTS=["other.example"]), pytest.raises(DisallowedHost):
        engine.variant_key(request, "view", ())


@override_settings(ALLOWED_HOSTS=["*"])
def test_validated_hosts_are_bounded():
    for number in range(engine._MAX_VALIDATED_HOSTS * 2):
        engine.variant_key(rf.get("/", HTTP_HOST=f"h{number}.example"), "view", ())
    assert len(engine._validated_hosts) <= engine._MAX_VALIDATED_HOSTS


@override_settings(ALLOWED_HOSTS=["a.example", "b.example"], USE_X_FORWARDED_HOST=True)
def test_forwarded_host_is_part_of_the_key():
    direct = rf.get("/", HTTP_HOST="a.example")
    forwarded = rf.get("/", HTTP_HOST="a.example", HTTP_X_FORWARDED_HOST="b.example")
    assert engine.variant_key(direct, "v", ())[1] == "a.example"
    assert engine.variant_key(forwarded, "v", ())[1] == "b.example"


def test_query_string_is_part_of_the_key():
    first = engine.variant_key(rf.get("/p", {"page": "1"}), "v", ())
    second = engine.variant_key(rf.get("/p", {"page": "2"}), "v", ())
    assert first != second
