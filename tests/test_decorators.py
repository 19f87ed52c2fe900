"""The Django-compatible decorators: Django's behaviour, the RFC fixes, and the extras."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings

from django_conditional.http import format_http_date
from tests.testapp import views
from tests.testapp.views import ETAG, FULL_RESPONSE, LAST_MODIFIED_STR, WEAK_ETAG

pytestmark = pytest.mark.urls("tests.testapp.urls")

EXPIRED_ETAG = '"7fae4cd4b0f81e7d2914700043aa8ed6"'
LAST_MODIFIED_NEWER_STR = "Mon, 18 Oct 2010 16:56:23 GMT"
LAST_MODIFIED_INVALID_STR = "Mon, 32 Oct 2010 16:56:23 GMT"
EXPIRED_LAST_MODIFIED_STR = "Sat, 20 Oct 2007 23:21:47 GMT"


@pytest.fixture(autouse=True)
def _reset_calls():
    views.calls.clear()


def assert_full(response, *, last_modified=True, etag=True):
    assert response.status_code == 200
    assert response.content == FULL_RESPONSE.encode()
    assert (response.get("Last-Modified") == LAST_MODIFIED_STR) if last_modified else True
    assert (response.get("ETag") == ETAG) if etag else True


def assert_not_modified(response):
    assert response.status_code == 304
    assert response.content == b""
    assert "Content-Length" not in response
    assert "Content-Type" not in response


# --- Django's behaviour, kept -------------------------------------------------


def test_without_conditions(client):
    assert_full(client.get("/condition/"))


@pytest.mark.parametrize(
    ("if_modified_since", "status"),
    [
        pytest.param(LAST_MODIFIED_STR, 304, id="same-date"),
        pytest.param(LAST_MODIFIED_NEWER_STR, 304, id="newer-date"),
        pytest.param(LAST_MODIFIED_INVALID_STR, 200, id="invalid-date"),
        pytest.param(EXPIRED_LAST_MODIFIED_STR, 200, id="older-date"),
    ],
)
def test_if_modified_since(client, if_modified_since, status):
    response = client.get("/condition/", headers={"if-modified-since": if_modified_since})
    assert response.status_code == status
    # An unsafe method ignores If-Modified-Since.
    assert (
        client.put("/condition/", headers={"if-modified-since": if_modified_since}).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("if_unmodified_since", "status"),
    [
        pytest.param(LAST_MODIFIED_STR, 200, id="same-date"),
        pytest.param(LAST_MODIFIED_NEWER_STR, 200, id="newer-date"),
        pytest.param(LAST_MODIFIED_INVALID_STR, 200, id="invalid-date"),
        pytest.param(EXPIRED_LAST_MODIFIED_STR, 412, id="older-date"),
    ],
)
def test_if_unmodified_since(client, if_unmodified_since, status):
    response = client.get("/condition/", headers={"if-unmodified-since": if_unmodified_since})
    assert response.status_code == status


@pytest.mark.parametrize(
    ("path", "if_none_match", "get_status", "put_status"),
    [
        pytest.param("/condition/", ETAG, 304, 412, id="match"),
        pytest.param("/condition/", EXPIRED_ETAG, 200, 200, id="no-match"),
        pytest.param("/condition/", f"{ETAG}, {EXPIRED_ETAG}", 304, 412, id="list"),
        pytest.param("/condition/weak_etag/", ETAG, 304, 412, id="strong-vs-weak-current"),
        pytest.param("/condition/weak_etag/", WEAK_ETAG, 304, 412, id="weak-vs-weak-current"),
        pytest.param("/condition/", WEAK_ETAG, 304, 412, id="weak-vs-strong-current"),
        pytest.param("/condition/", "*", 304, 412, id="any"),
        pytest.param("/condition/no_etag/", "*", 200, 200, id="any-no-representation"),
        pytest.param("/condition/unquoted_etag/", ETAG, 304, 412, id="unquoted-etag-func"),
        pytest.param("/condition/etag/", r'"\"', 200, 200, id="invalid-etag"),
    ],
)
def test_if_none_match(client, path, if_none_match, get_status, put_status):
    headers = {"if-none-match": if_none_match}
    assert client.get(path, headers=headers).status_code == get_status
    assert client.put(path, headers=headers).status_code == put_status


@pytest.mark.parametrize(
    ("path", "method", "if_match", "status"),
    [
        pytest.param("/condition/", "put", ETAG, 200, id="match"),
        pytest.param("/condition/", "put", EXPIRED_ETAG, 412, id="no-match"),
        pytest.param("/condition/weak_etag/", "get", ETAG, 412, id="weak-current"),
        pytest.param("/condition/weak_etag/", "get", WEAK_ETAG, 412, id="weak-both"),
        pytest.param("/condition/", "get", WEAK_ETAG, 412, id="weak-request"),
        pytest.param("/condition/", "get", "*", 200, id="any"),
        pytest.param("/condition/no_etag/", "get", "*", 412, id="any-no-representation"),
    ],
)
def test_if_match(client, path, method, if_match, status):
    response = getattr(client, method)(path, headers={"if-match": if_match})
    assert response.status_code == status


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param(
            {"if-modified-since": LAST_MODIFIED_STR, "if-none-match": ETAG}, 304, id="both-match"
        ),
        pytest.param(
            {"if-modified-since": EXPIRED_LAST_MODIFIED_STR, "if-none-match": ETAG},
            304,
            id="etag-wins-over-old-date",
        ),
        pytest.param(
            {"if-modified-since": LAST_MODIFIED_STR, "if-none-match": EXPIRED_ETAG},
            200,
            id="etag-wins-over-current-date",
        ),
        pytest.param(
            {"if-modified-since": EXPIRED_LAST_MODIFIED_STR, "if-none-match": EXPIRED_ETAG},
            200,
            id="neither",
        ),
        pytest.param(
            {"if-unmodified-since": LAST_MODIFIED_STR, "if-match": ETAG}, 200, id="ius-im-pass"
        ),
        pytest.param(
            {"if-unmodified-since": EXPIRED_LAST_MODIFIED_STR, "if-match": ETAG},
            200,
            id="if-match-wins-over-ius",
        ),
        pytest.param(
            {"if-unmodified-since": EXPIRED_LAST_MODIFIED_STR, "if-match": EXPIRED_ETAG},
            412,
            id="ius-im-fail",
        ),
        pytest.param(
            {"if-unmodified-since": LAST_MODIFIED_STR, "if-match": EXPIRED_ETAG},
            412,
            id="if-match-fails-ius-passes",
        ),
    ],
)
def test_both_headers(client, headers, status):
    assert client.get("/condition/", headers=headers).status_code == status


@pytest.mark.parametrize(
    ("path", "headers", "status", "has_etag", "has_last_modified"),
    [
        pytest.param(
            "/condition/last_modified/",
            {"if-modified-since": LAST_MODIFIED_STR},
            304,
            False,
            True,
            id="lm-ims",
        ),
        pytest.param(
            "/condition/last_modified2/",
            {"if-modified-since": LAST_MODIFIED_STR},
            304,
            False,
            True,
            id="lm2-ims",
        ),
        pytest.param(
            "/condition/etag/",
            {"if-modified-since": LAST_MODIFIED_STR},
            200,
            True,
            False,
            id="etag-ims",
        ),
        pytest.param(
            "/condition/etag2/", {"if-none-match": ETAG}, 304, True, False, id="etag2-inm"
        ),
        pytest.param(
            "/condition/last_modified/", {"if-none-match": ETAG}, 200, False, True, id="lm-inm"
        ),
        pytest.param(
            "/condition/last_modified/",
            {"if-modified-since": EXPIRED_LAST_MODIFIED_STR},
            200,
            False,
            True,
            id="lm-old-ims",
        ),
        pytest.param(
            "/condition/etag/", {"if-none-match": EXPIRED_ETAG}, 200, True, False, id="etag-old-inm"
        ),
        pytest.param(
            "/condition/last_modified/",
            {"if-unmodified-since": EXPIRED_LAST_MODIFIED_STR},
            412,
            False,
            False,
            id="lm-old-ius",
        ),
        pytest.param(
            "/condition/last_modified2/",
            {"if-unmodified-since": LAST_MODIFIED_STR},
            200,
            False,
            True,
            id="lm2-ius",
        ),
    ],
)
def test_single_condition(client, path, headers, status, has_etag, has_last_modified):
    response = client.get(path, headers=headers)
    assert response.status_code == status
    if status == 304:
        assert response.content == b""
    assert ("ETag" in response) is has_etag
    assert ("Last-Modified" in response) is has_last_modified


def test_head_is_treated_like_get(client):
    response = client.head("/condition/")
    assert response.status_code == 200
    assert response["ETag"] == ETAG
    assert response["Last-Modified"] == LAST_MODIFIED_STR
    assert_not_modified(
        client.head("/condition/", headers={"if-modified-since": LAST_MODIFIED_STR})
    )
    assert_not_modified(client.head("/condition/", headers={"if-none-match": ETAG}))


def test_unquoted_etag_is_quoted(client):
    assert client.get("/condition/etag/")["ETag"] == client.get("/condition/unquoted_etag/")["ETag"]


def test_304_carries_the_validators(client):
    response = client.get("/condition/", headers={"if-none-match": ETAG})
    assert_not_modified(response)
    assert response["ETag"] == ETAG
    assert response["Last-Modified"] == LAST_MODIFIED_STR


def test_unsafe_method_responses_carry_no_validators(client):
    """As in Django: after a write, the validator computed before it is stale."""
    response = client.put("/condition/", headers={"if-match": ETAG})
    assert response.status_code == 200
    assert "ETag" not in response
    assert "Last-Modified" not in response


def test_view_headers_win(client):
    response = client.get("/own-headers/")
    assert response["ETag"] == '"from-the-view"'
    assert response["Last-Modified"] == "Mon, 01 Jan 2001 00:00:00 GMT"


def test_aware_datetimes_are_converted_to_gmt(client):
    assert client.get("/aware/")["Last-Modified"] == LAST_MODIFIED_STR


# --- Where we follow RFC 9110 and Django does not ------------------------------


def test_if_unmodified_since_ignored_without_last_modified(client):
    """RFC 9110 section 13.1.4; Django answers 412 (ticket #37252)."""
    response = client.get(
        "/condition/etag/", headers={"if-unmodified-since": EXPIRED_LAST_MODIFIED_STR}
    )
    assert response.status_code == 200


def test_if_match_any_tests_the_representation_not_the_etag(client):
    """RFC 9110 section 13.1.1: ``*`` is true when a current representation exists."""
    response = client.put("/condition/last_modified/", headers={"if-match": "*"})
    assert response.status_code == 200


def test_if_none_match_any_is_a_create_only_guard(client):
    assert (
        client.put("/condition/last_modified/", headers={"if-none-match": "*"}).status_code == 412
    )
    assert client.put("/condition/no_etag/", headers={"if-none-match": "*"}).status_code == 200


@pytest.mark.parametrize("method", ["options", "trace"])
def test_methods_without_representation_ignore_preconditions(client, method):
    """RFC 9110 section 13.2.1: OPTIONS, CONNECT and TRACE ignore preconditions."""
    response = getattr(client, method)("/condition/", headers={"if-match": EXPIRED_ETAG})
    assert response.status_code == 200
    assert views.calls == {}


def test_malformed_if_none_match_still_disables_if_modified_since(client):
    """RFC 9110 section 13.2.2 step 4 applies only when If-None-Match is absent."""
    response = client.get(
        "/condition/",
        headers={"if-none-match": "not-an-etag", "if-modified-since": LAST_MODIFIED_STR},
    )
    assert response.status_code == 200


def test_malformed_if_match_fails(client):
    """RFC 9110 section 13.1.1 step 3: a value that is neither ``*`` nor tags is false."""
    assert client.put("/condition/", headers={"if-match": "not-an-etag"}).status_code == 412


def test_404_from_validator_function_beats_412(client):
    response = client.put("/missing/validator/", headers={"if-match": EXPIRED_ETAG})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("path", "status"),
    [pytest.param("/missing/view/", 404, id="404"), pytest.param("/redirecting/", 302, id="302")],
)
def test_non_2xx_view_response_beats_412_on_get(client, path, status):
    """RFC 9110 section 13.2.1: preconditions apply only where the answer would be 2xx."""
    response = client.get(path, headers={"if-match": EXPIRED_ETAG})
    assert response.status_code == status
    assert "ETag" not in response


def test_412_when_safe_view_would_succeed(client):
    response = client.get("/condition/", headers={"if-match": EXPIRED_ETAG})
    assert response.status_code == 412


def test_a_future_last_modified_is_not_sent(client):
    # RFC 9110 section 8.8.2.1: never later than Date. Django clamps it to now,
    # which names the current second: a second change in it would not move it.
    response = client.get("/future/")
    assert response.status_code == 200
    assert not response.has_header("Last-Modified")


def test_a_last_modified_in_the_second_of_the_responses_date_is_not_sent(client):
    response = client.get("/dated/")
    assert response["Date"] == "Sat, 20 Oct 2007 00:00:00 GMT"
    assert not response.has_header("Last-Modified")


def test_future_if_modified_since_is_ignored(client):
    future = format_http_date(dt.datetime.now(dt.timezone.utc).timestamp() + 86400)
    assert client.get("/condition/", headers={"if-modified-since": future}).status_code == 200


def test_huge_header_is_answered_431_not_500(client):
    response = client.get("/condition/", headers={"if-none-match": '"x", ' * 200_000})
    assert response.status_code == 431
    assert b"If-None-Match" in response.content


def test_412_names_the_precondition_and_carries_the_current_etag(client):
    response = client.put("/condition/", headers={"if-match": EXPIRED_ETAG})
    assert response.status_code == 412
    assert response["ETag"] == ETAG
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert b"If-Match" in response.content


# --- Extras ----------------------------------------------------------------------

SYNC_AND_ASYNC_PATHS = [
    pytest.param("/condition/", id="sync-view-sync-funcs"),
    pytest.param("/async/sync-funcs/", id="async-view-sync-funcs"),
    pytest.param("/async/async-funcs/", id="async-view-async-funcs"),
    pytest.param("/sync/async-funcs/", id="sync-view-async-funcs"),
]


@pytest.mark.parametrize("path", SYNC_AND_ASYNC_PATHS)
def test_sync_and_async(client, path):
    assert_full(client.get(path))
    assert_not_modified(client.get(path, headers={"if-none-match": ETAG}))
    assert_not_modified(client.get(path, headers={"if-modified-since": LAST_MODIFIED_STR}))
    assert client.put(path, headers={"if-match": EXPIRED_ETAG}).status_code == 412
    assert sum(views.calls.values()) == 2 * 4


@pytest.mark.parametrize("path", SYNC_AND_ASYNC_PATHS)
async def test_sync_and_async_under_asgi(async_client, path):
    assert_full(await async_client.get(path))
    assert_not_modified(await async_client.get(path, headers={"if-none-match": ETAG}))


def test_each_validator_function_runs_once_per_request(client):
    client.get(
        "/condition/",
        headers={"if-none-match": EXPIRED_ETAG, "if-modified-since": LAST_MODIFIED_STR},
    )
    assert views.calls == {"etag": 1, "last_modified": 1}


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_unsafe_request_without_precondition_computes_nothing(client, method):
    response = getattr(client, method)(
        "/condition/", headers={"if-modified-since": LAST_MODIFIED_STR}
    )
    assert response.status_code == 200
    assert views.calls == {}


@pytest.mark.parametrize("header", ["if-match", "if-none-match", "if-unmodified-since"])
def test_unsafe_request_with_precondition_computes_once(client, header):
    client.post(
        "/condition/",
        headers={header: ETAG if header != "if-unmodified-since" else LAST_MODIFIED_STR},
    )
    assert views.calls == {"etag": 1, "last_modified": 1}


def test_view_reuses_the_validator(client):
    assert client.get("/reuse/").json() == {
        "etag": ETAG,
        "last_modified": "2007-10-21T23:21:47+00:00",
    }
    assert views.calls == {"etag": 1, "last_modified": 1}


def test_view_sees_no_validator_when_none_was_computed(client):
    assert client.post("/reuse/").json() == {"etag": None, "last_modified": None}


async def test_async_view_reuses_the_validator(async_client):
    assert (await async_client.get("/async/reuse/")).json() == {"etag": ETAG}


def test_cache_control_and_vary_on_200_and_304_alike(client):
    full = client.get("/cached/")
    not_modified = client.get("/cached/", headers={"if-none-match": ETAG})
    assert_not_modified(not_modified)
    for header in ("Cache-Control", "Vary", "ETag", "Last-Modified"):
        assert not_modified[header] == full[header], header
    assert set(full["Cache-Control"].split(", ")) == {"max-age=60", "private"}
    assert full["Vary"] == "Cookie, Accept-Language"


def test_common_middleware_does_not_add_content_length_to_304(client, settings):
    assert "django.middleware.common.CommonMiddleware" in settings.MIDDLEWARE
    response = client.get("/condition/", headers={"if-none-match": ETAG})
    assert_not_modified(response)


def test_debug_header(client):
    with override_settings(CONDITIONAL_DEBUG_HEADER=True):
        response = client.get("/condition/", headers={"if-none-match": ETAG})
    assert response["X-Conditional"] == "304; If-None-Match matched the current representation"
    assert "X-Conditional" not in client.get("/condition/", headers={"if-none-match": ETAG})


def test_decorated_view_keeps_its_name():
    assert views.reuse.__name__ == "reuse"
    assert views.async_reuse.__name__ == "async_reuse"
