"""The circuit breaker: one probe per wait, logged once per outage, recovery by itself."""

from __future__ import annotations

import logging

import pytest

from django_conditional import store_health
from django_conditional.store_health import FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS, Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(store_health.time, "monotonic", clock)
    return clock


def test_an_answering_store_is_always_asked(clock):
    breaker = Breaker("test store")
    assert all(breaker.allow() for _ in range(3))
    assert breaker.snapshot().skipped == 0


def test_after_a_failure_one_request_per_wait_asks_again(clock):
    breaker = Breaker("test store")
    breaker.failed(ConnectionError("refused"))
    assert [breaker.allow() for _ in range(3)] == [False, False, False]
    clock.now += FIRST_RETRY_SECONDS
    assert [breaker.allow() for _ in range(3)] == [True, False, False]
    snapshot = breaker.snapshot()
    assert (snapshot.available, snapshot.failures, snapshot.skipped) == (False, 1, 5)


def test_the_wait_doubles_while_probes_fail_up_to_its_maximum(clock):
    breaker = Breaker("test store")
    breaker.failed(ConnectionError("refused"))
    waits = []
    for _ in range(7):
        waited = 0.0
        while not breaker.allow():
            clock.now += 0.25
            waited += 0.25
        waits.append(waited)
        breaker.failed(ConnectionError("refused"))
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert waits[-1] == MAX_RETRY_SECONDS


def test_refusals_do_not_push_the_next_probe_back(clock):
    """Requests turned away by the breaker are no new failures (a write retried in a loop)."""
    breaker = Breaker("test store")
    breaker.failed(ConnectionError("refused"))
    for _ in range(8):  # binary fractions: the sums are exact
        clock.now += FIRST_RETRY_SECONDS / 16
        breaker.allow()
    clock.now += FIRST_RETRY_SECONDS / 2
    assert breaker.allow()


def test_a_probe_whose_answer_never_comes_back_does_not_stop_the_next(clock):
    breaker = Breaker("test store")
    breaker.failed(ConnectionError("refused"))
    clock.now += FIRST_RETRY_SECONDS
    assert breaker.allow()  # ... and its caller never says how it went
    assert not breaker.allow()
    clock.now += FIRST_RETRY_SECONDS
    assert breaker.allow()


def test_an_outage_is_logged_once_and_its_end_with_what_it_cost(clock, caplog):
    breaker = Breaker("test store")
    with caplog.at_level(logging.WARNING, logger="django_conditional"):
        breaker.failed(ConnectionError("refused"))
        for _ in range(4):
            breaker.allow()
        clock.now += FIRST_RETRY_SECONDS
        assert breaker.allow()
        breaker.failed(TimeoutError("timed out"))
        clock.now += 2 * FIRST_RETRY_SECONDS
        assert breaker.allow()
        breaker.succeeded()
        breaker.succeeded()
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert messages == [
        (
            "ERROR",
            "The test store does not answer (ConnectionError: refused); pages that need it are "
            "served in full, without validators, until it does (asked again after 0.5 s, then "
            "less often).",
        ),
        (
            "WARNING",
            "The test store answers again after 1.5 s; 6 request(s) were served without it.",
        ),
    ]
    snapshot = breaker.snapshot()
    assert (snapshot.available, snapshot.outages, snapshot.failures) == (True, 1, 2)
    assert snapshot.last_error == "TimeoutError: timed out"
    assert breaker.allow()


def test_breakers_are_one_per_name_and_reset_together(clock):
    first = store_health.breaker("test store A")
    assert store_health.breaker("test store A") is first
    first.failed(ConnectionError("refused"))
    assert not first.allow()
    store_health.reset_all()
    assert first.allow()
    assert any(found.name == "test store A" for found in store_health.snapshot())
