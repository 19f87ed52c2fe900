"""The shared engine: which requests need validators, and the decisions' responses."""

from __future__ import annotations

import logging

import pytest
from django.test import RequestFactory

from django_conditional import engine
from django_conditional.http import EntityTag, Outcome
from django_conditional.validators import Validator

rf = RequestFactory()


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        pytest.param("GET", {}, True, id="get"),
        pytest.param("HEAD", {}, True, id="head"),
        pytest.param("POST", {}, False, id="post-unconditional"),
        pytest.param(
            "PUT", {"if-modified-since": "Sun, 06 Nov 1994 08:49:37 GMT"}, False, id="put-ims-only"
        ),
        pytest.param("PUT", {"if-match": '"a"'}, True, id="put-if-match"),
        pytest.param("DELETE", {"if-none-match": "*"}, True, id="delete-if-none-match"),
        pytest.param("PATCH", {"if-unmodified-since": "x"}, True, id="patch-ius"),
        pytest.param("OPTIONS", {"if-match": '"a"'}, False, id="options"),
        pytest.param("TRACE", {"if-match": '"a"'}, False, id="trace"),
    ],
)
def test_needs_validator(method, headers, expected):
    request = rf.generic(method, "/", headers=headers)
    assert engine.needs_validator(request) is expected


def test_evaluate_logs_the_decision(caplog):
    request = rf.get("/page/", headers={"if-none-match": '"a"'})
    with caplog.at_level(logging.DEBUG, logger="django_conditional"):
        decision = engine.evaluate(request, Validator(etag=EntityTag("a")))
    assert decision.outcome is Outcome.NOT_MODIFIED
    assert "GET /page/: 304 (If-None-Match matched" in caplog.text


def test_412_is_logged_like_djangos(caplog):
    request = rf.put("/page/", headers={"if-match": '"b"'})
    validator = Validator(etag=EntityTag("a"))
    decision = engine.evaluate(request, validator)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = engine.short_circuit_response(request, decision, validator, now=0)
    assert response.status_code == 412
    assert "Precondition Failed: /page/" in caplog.text
