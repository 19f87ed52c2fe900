"""The immutable Validator built from Django-style validator function results."""

from __future__ import annotations

import datetime as dt

import pytest

from django_conditional.http import EntityTag, Representation
from django_conditional.validators import Validator, to_utc

UTC = dt.timezone.utc


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            dt.datetime(2007, 1, 2, 3, 4, 5),
            dt.datetime(2007, 1, 2, 3, 4, 5, tzinfo=UTC),
            id="naive-is-utc",
        ),
        pytest.param(
            dt.datetime(2007, 1, 2, 5, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            dt.datetime(2007, 1, 2, 3, 4, 5, tzinfo=UTC),
            id="aware-converted",
        ),
    ],
)
def test_to_utc(value, expected):
    assert to_utc(value) == expected
    assert to_utc(value).tzinfo is UTC


def test_from_values():
    validator = Validator.from_values("abc", dt.datetime(2007, 1, 2, 3, 4, 5, 999999))
    assert validator.etag == EntityTag("abc")
    assert validator.exists
    assert validator.representation(now=2e9) == Representation(
        etag=EntityTag("abc"), last_modified=1167707045, exists=True
    )


@pytest.mark.parametrize(
    ("etag", "last_modified", "exists"),
    [
        pytest.param(None, None, False, id="nothing-found"),
        pytest.param("a", None, True, id="etag-only"),
        pytest.param(None, dt.datetime(2007, 1, 1), True, id="date-only"),
        pytest.param("", None, True, id="empty-etag-is-a-value"),
    ],
)
def test_exists_when_any_function_returned_a_value(etag, last_modified, exists):
    assert Validator.from_values(etag, last_modified).exists is exists


@pytest.mark.parametrize(
    ("last_modified", "date", "sent"),
    [
        pytest.param(999.0, 1000.2, 999, id="an-earlier-second"),
        pytest.param(999.9, 1000.0, 999, id="just-before-the-second"),
        pytest.param(1000.0, 1000.7, None, id="the-same-second"),
        pytest.param(1000.9, 1000.1, None, id="later-in-the-same-second"),
        pytest.param(2_000_000_000.0, 1000.0, None, id="in-the-future"),
    ],
)
def test_last_modified_is_sent_only_in_an_earlier_second_than_the_date(last_modified, date, sent):
    validator = Validator(last_modified=dt.datetime.fromtimestamp(last_modified, tz=UTC))
    assert validator.last_modified_seconds(not_after=date) == sent


def test_an_unsettled_date_is_not_sent_until_settled():
    unsettled = Validator(
        last_modified=dt.datetime.fromtimestamp(999, tz=UTC), last_modified_settled=False
    )
    assert unsettled.last_modified_seconds(not_after=5000.0) is None
    assert unsettled.representation(5000.0).last_modified == 999
    assert not unsettled.representation(5000.0).last_modified_settled
    assert unsettled.settled().last_modified_seconds(not_after=5000.0) == 999
    assert Validator().last_modified_seconds(not_after=1.0) is None


def test_validator_is_immutable():
    with pytest.raises(AttributeError):
        Validator().etag = EntityTag("x")  # type: ignore[misc]
