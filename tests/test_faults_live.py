"""The demo on gunicorn (2 workers, 4 threads each) with its stamps in a private Redis.

A writer process writes through every write path while Redis is cut off from it alone,
stopped and restarted with its data, and restarted empty. Between faults the writer is
idle, so every page has one right body: a 304 for a tag is stale unless a plain GET made
right after it shows the body that tag was sent with. Counted over every revalidation:
0 stale 304s, 0 responses 5xx, and pages back with validators by themselves.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.redis_server import PrivateRedis, free_port, require
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parent.parent
START_SECONDS = 30
RECOVERY_LIMIT_SECONDS = 20


@dataclass
class Demo:
    port: int
    pages: list[str]
    writes: list[str]
    writer: subprocess.Popen[str]
    counts: dict[str, int] = field(default_factory=lambda: {"304": 0, "stale": 0, "5xx": 0})
    last_answer: dict[str, str] = field(default_factory=dict)
    phase: str = ""
    stale: list[tuple[str, str, str, str]] = field(default_factory=list)

    def get(self, path: str, etag: str | None = None) -> tuple[int, str | None, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            connection.request("GET", path, headers={"If-None-Match": etag} if etag else {})
            response = connection.getresponse()
            return response.status, response.getheader("ETag"), response.read()
        finally:
            connection.close()

    def write(self, name: str) -> str:
        assert self.writer.stdin is not None
        assert self.writer.stdout is not None
        self.writer.stdin.write(name + "\n")
        self.writer.stdin.flush()
        answer = json.loads(self.writer.stdout.readline())
        assert not answer["result"].startswith("error"), answer
        self.last_answer = answer
        return str(answer["result"])

    def keep(self) -> dict[str, tuple[str, bytes]]:
        """Each page's tag and body now (pages without a tag are left out)."""
        kept = {}
        for page in self.pages:
            status, etag, body = self.get(page)
            self.count(status)
            if etag is not None:
                kept[page] = (etag, body)
        return kept

    def count(self, status: int) -> None:
        if status >= 500:
            self.counts["5xx"] += 1

    def revalidate_all(self, kept: dict[str, tuple[str, bytes]]) -> bool:
        """Revalidate every kept tag once; whether every page had validators."""
        every_page_validated = True
        for page, (etag, body) in kept.items():
            status, new_etag, _ = self.get(page, etag)
            self.count(status)
            if status == 304:
                self.counts["304"] += 1
                now_status, _, now_body = self.get(page)
                if now_status == 200 and _content(now_body) != _content(body):
                    self.counts["stale"] += 1
                    self.stale.append((self.phase, page, etag, _difference(body, now_body)))
            elif new_etag is None:
                every_page_validated = False
        return every_page_validated

    def watch(self, kept: dict[str, tuple[str, bytes]], seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.revalidate_all(kept)

    def until_validated(self, kept: dict[str, tuple[str, bytes]]) -> float:
        began = time.monotonic()
        while not self.revalidate_all(kept):
            assert time.monotonic() - began < RECOVERY_LIMIT_SECONDS, "pages did not recover"
            time.sleep(0.05)
        return time.monotonic() - began

    def write_until_stored(self, name: str) -> float:
        """The writer's breaker refuses at once for a moment after an outage: retry."""
        began = time.monotonic()
        while self.write(name) != "stored":
            assert time.monotonic() - began < RECOVERY_LIMIT_SECONDS, self.last_answer["why"]
            time.sleep(0.1)
        return time.monotonic() - began


# The demo's footer shows the page's own tag and date (None while served without them).
_OWN_TAG = re.compile(rb"entity tag is <code>.*?</code>(?:, last modified <time.*?</time>)?")


def _content(body: bytes) -> bytes:
    """The page without what only says how it was served."""
    return _OWN_TAG.sub(b"", body)


def _difference(before: bytes, after: bytes) -> str:
    """Where two bodies part, for the failure message."""
    at = next(
        (i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b),
        min(len(before), len(after)),
    )
    return f"{before[max(0, at - 60) : at + 60]!r} became {after[max(0, at - 60) : at + 60]!r}"


def _run(args: list[str], env: dict[str, str]) -> None:
    subprocess.run(args, env=env, cwd=ROOT, check=True, capture_output=True, timeout=120)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Demo, PrivateRedis, TcpProxy]]:
    require("redis-server", "apt-get install redis-server")
    require("gunicorn", 'pip install -e ".[test]"')
    redis = PrivateRedis(tmp_path)
    redis.start()
    proxy = TcpProxy(redis.port)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "testproject.settings",
        "DJANGO_DEBUG": "0",
        "CONDITIONAL_TEST_DATABASE": "sqlite",
        "CONDITIONAL_TEST_CACHE": "locmem",
        "CONDITIONAL_SQLITE_PATH": str(tmp_path / "demo.sqlite3"),
        "CONDITIONAL_STAMP_REDIS_URL": redis.url,
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    _run([*manage, "migrate", "--noinput"], env)
    _run([*manage, "seed_demo", "--articles", "12"], env)
    port = free_port()
    server_log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115 - closed below
    writer_log = open(tmp_path / "writer.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "testproject.wsgi", "--workers", "2", "--threads",
         "4", "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "2", "--log-level", "warning"],
        env=env, cwd=ROOT, stderr=server_log,
    )  # fmt: skip
    writer = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fault_writer.py")],
        env={**env, "CONDITIONAL_STAMP_REDIS_URL": proxy.url},
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=writer_log, text=True,
    )  # fmt: skip
    try:
        assert writer.stdout is not None
        ready = json.loads(writer.stdout.readline() or "{}")
        assert ready.get("ready"), (tmp_path / "writer.log").read_text()
        demo = Demo(port, ready["pages"], ready["writes"], writer)
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                if demo.get("/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.1)
        yield demo, redis, proxy
    finally:
        writer.kill()
        writer.wait()
        for pipe in (writer.stdin, writer.stdout):
            if pipe is not None:
                pipe.close()
        server.terminate()
        server.wait(timeout=10)
        server_log.close()
        writer_log.close()
        proxy.close()
        redis.stop()


def test_the_demo_on_gunicorn_never_answers_a_stale_304_through_redis_faults(demo) -> None:
    site, redis, proxy = demo
    recovered: dict[str, float] = {}

    # 1. Redis reachable by the servers, cut off from the writer: every write refused.
    site.phase = "writer cut off"
    kept = site.keep()
    assert kept, "no page had validators"
    proxy.cut()
    assert {name: site.write(name) for name in site.writes} == dict.fromkeys(site.writes, "refused")
    site.watch(kept, 1.0)
    proxy.restore()
    site.phase = "writer reconnected"
    recovered["writer cut off: its next write stored after"] = site.write_until_stored("save")
    for name in site.writes:
        assert site.write(name) == "stored"
    site.watch(kept, 0.5)

    # 2. Redis stopped and restarted with its data; writes while it is down are refused.
    site.phase = "restarted with its data"
    kept = site.keep()
    redis.stop(keep_data=True)
    assert all(site.write(name) == "refused" for name in site.writes)
    site.watch(kept, 1.0)
    redis.start(with_data=True)
    recovered["restarted with its data: pages back after"] = site.until_validated(kept)
    site.write_until_stored("update")
    site.watch(kept, 0.5)

    # 3. Redis restarted empty.
    site.phase = "restarted empty"
    kept = site.keep()
    redis.stop()
    site.watch(kept, 0.5)
    redis.start()
    recovered["restarted empty: pages back after"] = site.until_validated(site.keep())
    for name in site.writes:
        site.write_until_stored(name)
    site.watch(kept, 0.5)

    print("\n" + json.dumps({"counts": site.counts, "recovery_seconds": recovered}, indent=1))
    assert site.stale == []
    assert site.counts["5xx"] == 0
    assert site.counts["304"] > 0  # the oracle saw 304s to judge
