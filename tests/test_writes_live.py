"""Concurrent conditional writes against the demo's API on gunicorn (4 workers x 4 threads).

Each round creates an article, reads its tag, then releases WRITERS requests at
once (a barrier), all carrying that tag: exactly one must win (2xx), every other
one must get 412, none a 5xx, and the stored article must be the winner's write.
The same rounds against ``/api/unguarded/`` (Django's ``condition``: check, then
save) are the control, which must lose updates in the same test: otherwise the
test could not tell a guard from luck.

On the database the suite runs on: SQLite (a file of its own, with the demo's
settings for concurrent writers), or the PostgreSQL or MariaDB test database,
which the server shares with this test (its rows are committed).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection

from tests.redis_server import free_port, require

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
START_SECONDS = 30
WRITERS = 8
ROUNDS = 10
TIMEOUT = 60


@dataclass(frozen=True)
class Reply:
    status: int
    etag: str | None
    body: bytes


@dataclass
class Api:
    port: int

    def send(self, method: str, path: str, body: object = None, **headers: str) -> Reply:
        payload = None if body is None else json.dumps(body)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        link = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            link.request(method, path, body=payload, headers=headers)
            response = link.getresponse()
            return Reply(response.status, response.getheader("ETag"), response.read())
        finally:
            link.close()


def _server_env(tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "testproject.settings",
        "DJANGO_DEBUG": "0",
        "CONDITIONAL_TEST_CACHE": "locmem",
    }
    env.pop("CONDITIONAL_STAMP_REDIS_URL", None)
    name = str(connection.settings_dict["NAME"])
    if connection.vendor == "sqlite":
        env |= {"CONDITIONAL_TEST_DATABASE": "sqlite"}
        env["CONDITIONAL_SQLITE_PATH"] = str(tmp_path / "writes.sqlite3")
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput"],
            env=env, cwd=ROOT, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    elif connection.vendor == "postgresql":
        env |= {"CONDITIONAL_TEST_DATABASE": "postgresql", "PGDATABASE": name}
    elif connection.vendor == "mysql":
        env |= {"CONDITIONAL_TEST_DATABASE": "mariadb", "MYSQL_DATABASE": name}
    else:  # pragma: no cover - the suite runs on these three
        pytest.fail(f"no live setup for {connection.vendor}")
    return env


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    require("gunicorn", 'pip install -e ".[test]"')
    env = _server_env(tmp_path)
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "testproject.wsgi", "--workers", "4", "--threads",
         "4", "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "2", "--log-level", "warning"],
        env=env, cwd=ROOT, stderr=log,
    )  # fmt: skip
    api = Api(port)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                if api.send("GET", "/healthz").status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.1)
        yield api
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


@dataclass
class Round:
    statuses: Counter[int]
    winners: list[str]
    stored: str

    @property
    def problems(self) -> list[str]:
        """What makes this round a lost update or a failure ([] for a correct round)."""
        found = []
        wins = sum(n for status, n in self.statuses.items() if 200 <= status < 300)
        if wins != 1:
            found.append(f"{wins} writers won")
        if self.statuses[412] != WRITERS - wins or wins == 0:
            found.append(f"{self.statuses[412]} got 412")
        if any(status >= 500 for status in self.statuses):
            found.append(f"5xx: {dict(self.statuses)}")
        if self.winners and self.stored not in self.winners[-1:]:
            found.append(f"stored {self.stored!r}, the last acknowledged was {self.winners[-1]!r}")
        if len(self.winners) > 1:
            found.append(f"{len(self.winners) - 1} acknowledged updates lost")
        return found


def race(api: Api, base: str, number: int) -> Round:
    """One round: a new article, then WRITERS edits with its tag released together."""
    created = api.send("POST", "/api/articles/", {"title": f"round {number}", "body": "-"})
    assert created.status == 201, created.body
    pk = json.loads(created.body)["id"]
    path = f"{base}{pk}/"
    first = api.send("GET", path)
    assert first.status == 200
    assert first.etag
    barrier = threading.Barrier(WRITERS)

    def write(writer: int) -> tuple[int, str]:
        title = f"writer {writer} of round {number}"
        barrier.wait(timeout=TIMEOUT)
        reply = api.send(
            "PUT", path, {"title": title, "body": "edited"}, **{"If-Match": first.etag}
        )
        return reply.status, title

    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(write, range(WRITERS)))
    stored = json.loads(api.send("GET", f"/api/articles/{pk}/").body)["title"]
    winners = [title for status, title in results if 200 <= status < 300]
    # Acknowledged in an unknown order: the stored one is "the last" if it is among them.
    if stored in winners:
        winners.remove(stored)
        winners.append(stored)
    return Round(Counter(status for status, _ in results), winners, stored)


def test_concurrent_edits_with_one_tag_have_one_winner(api: Api) -> None:
    rounds = [race(api, "/api/articles/", number) for number in range(ROUNDS)]
    report = [(dict(r.statuses), r.problems) for r in rounds]
    assert all(not r.problems for r in rounds), report
    # The control: the same test against check-then-save must fail in some round.
    control = [race(api, "/api/unguarded/articles/", number) for number in range(ROUNDS)]
    lost = sum(len(r.winners) - 1 for r in control if r.winners)
    assert any(r.problems for r in control), (
        "the control (Django's condition, check then save) lost no update in "
        f"{ROUNDS} rounds of {WRITERS}: the test cannot tell a guard from luck"
    )
    print(
        f"\n{connection.vendor}: guarded {ROUNDS} rounds x {WRITERS} writers: "
        f"{sum(r.statuses[412] for r in rounds)} x 412, "
        f"{sum(1 for r in rounds if len(r.winners) == 1)} winners, 0 lost; "
        f"control: {lost} acknowledged updates lost, "
        f"{sum(1 for r in control if r.problems)} of {ROUNDS} rounds wrong"
    )
