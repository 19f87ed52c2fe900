"""The demo on gunicorn for the live tests: started, waited for, stopped."""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.redis_server import free_port, require

ROOT = Path(__file__).resolve().parent.parent
START_SECONDS = 30


def _answers(port: int) -> bool:
    link = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        link.request("GET", "/healthz")
        return link.getresponse().status == 200
    except OSError:
        return False
    finally:
        link.close()


@contextmanager
def serve(env: dict[str, str], log: Path, *, workers: int, threads: int) -> Iterator[int]:
    """``testproject.wsgi`` on 127.0.0.1 under ``env``: its port, once /healthz answers 200."""
    require("gunicorn", 'pip install -e ".[test]"')
    port = free_port()
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "testproject.wsgi", "--workers", str(workers),
             "--threads", str(threads), "--bind", f"127.0.0.1:{port}", "--graceful-timeout",
             "2", "--log-level", "warning"],
            env=env, cwd=ROOT, stderr=output,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + START_SECONDS
            while not _answers(port):
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            yield port
        finally:
            server.terminate()
            server.wait(timeout=10)
