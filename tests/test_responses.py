"""The 304/412/428/431 builders."""

from __future__ import annotations

import json
import pickle

import pytest
from django.http import HttpResponse

from django_conditional.http import Decision, EntityTag, Outcome
from django_conditional.responses import (
    NOT_MODIFIED_HEADERS,
    NotModifiedResponse,
    not_modified,
    not_modified_from,
    precondition_failed,
    precondition_required,
    request_fields_too_large,
    wants_problem_json,
)


def test_not_modified_has_no_body_type_or_length():
    response = not_modified()
    assert response.status_code == 304
    assert response.content == b""
    assert "Content-Type" not in response
    assert "Content-Length" not in response


def test_not_modified_refuses_content_length_however_it_is_set():
    response = NotModifiedResponse()
    response["Content-Length"] = "0"
    response.headers["content-length"] = "12"
    response.headers.setdefault("Content-Length", "7")
    assert "Content-Length" not in response
    response["ETag"] = '"a"'
    assert response["ETag"] == '"a"'


def test_not_modified_survives_pickling():
    """The cache middleware pickles responses."""
    response = pickle.loads(pickle.dumps(not_modified({"ETag": '"a"'})))
    assert response.status_code == 304
    assert response["ETag"] == '"a"'


def test_not_modified_copies_only_what_a_304_repeats():
    headers = {name: f"value of {name}" for name in NOT_MODIFIED_HEADERS}
    response = not_modified({**headers, "Content-Type": "text/html", "X-Other": "1"})
    assert {name: response[name] for name in NOT_MODIFIED_HEADERS} == headers
    assert "X-Other" not in response
    assert "Content-Type" not in response


def test_not_modified_from_a_full_response():
    full = HttpResponse("body", content_type="text/html")
    full["ETag"] = '"a"'
    full["Cache-Control"] = "max-age=60"
    full["Vary"] = "Cookie"
    full["Expires"] = "Sun, 06 Nov 1994 08:49:37 GMT"
    full["Content-Location"] = "/a/"
    full["Date"] = "Sun, 06 Nov 1994 08:49:37 GMT"
    full["Last-Modified"] = "Sun, 06 Nov 1994 08:49:37 GMT"
    full.set_cookie("session", "abc")
    response = not_modified_from(full)
    for name in NOT_MODIFIED_HEADERS:
        assert response[name] == full[name]
    assert response.cookies["session"].value == "abc"
    assert "Content-Length" not in response
    assert "Content-Type" not in response


def test_precondition_failed():
    decision = Decision(Outcome.PRECONDITION_FAILED, "If-Match did not match", "If-Match")
    response = precondition_failed(decision, EntityTag("v2"))
    assert response.status_code == 412
    assert response["ETag"] == '"v2"'
    assert response.content == b"Precondition Failed: If-Match did not match.\n"
    assert "ETag" not in precondition_failed(decision)


def test_precondition_required():
    response = precondition_required("PUT")
    assert response.status_code == 428
    assert b"If-Match" in response.content


@pytest.mark.parametrize(
    ("accept", "content_type", "expected"),
    [
        ("application/json", None, True),
        ("application/problem+json; q=1", None, True),
        ("text/html, application/vnd.api+json;q=0.9", None, True),
        (None, "application/json; charset=utf-8", True),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", None, False),
        ("*/*", "application/x-www-form-urlencoded", False),
        (None, None, False),
        ("text/plain, " * 40 + "application/json", None, False),  # past the parts read
    ],
)
def test_json_clients_are_recognised(accept, content_type, expected):
    assert wants_problem_json(accept, content_type) is expected


def test_json_clients_get_problem_details():
    decision = Decision(Outcome.PRECONDITION_FAILED, "If-Match did not match", "If-Match")
    response = precondition_failed(decision, EntityTag("v2"), as_json=True)
    assert response.status_code == 412
    assert response["Content-Type"] == "application/problem+json"
    assert response["ETag"] == '"v2"'
    assert json.loads(response.content) == {
        "type": "about:blank",
        "title": "Precondition Failed",
        "status": 412,
        "detail": "If-Match did not match.",
    }
    required = json.loads(precondition_required("PATCH", as_json=True).content)
    assert required["status"] == 428
    assert "PATCH" in required["detail"]
    assert "If-Match" in required["detail"]


def test_request_fields_too_large():
    decision = Decision(Outcome.FIELDS_TOO_LARGE, "If-Match is too large", "If-Match")
    response = request_fields_too_large(decision)
    assert response.status_code == 431
    assert b"If-Match is too large" in response.content


def test_not_modified_yields_one_empty_chunk():
    """wsgiref (runserver) defaults Content-Length to 0 when no chunk is written at all."""
    assert list(not_modified()) == [b""]
    assert not_modified().content == b""
