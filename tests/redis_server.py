"""A private ``redis-server`` on 127.0.0.1 that a test may stop, restart, flush and pause.

Never the shared Redis of the machine: each server has its own port and directory, so a
fault run cannot disturb another run (or CI's service rows).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

START_TIMEOUT_SECONDS = 10


def require(executable: str, how_to_install: str) -> None:
    """Skip a test whose program is missing on a developer's machine; fail it in CI.

    The README's test command needs only Python; CI installs everything, so there a
    missing program is a broken setup, not a reason to report the faults as tested.
    """
    import pytest

    found = shutil.which(executable) is not None or (
        executable == "gunicorn" and importlib.util.find_spec("gunicorn") is not None
    )
    if found:
        return
    message = f"needs {executable} ({how_to_install})"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{message}: CI must run the fault tests", pytrace=False)
    pytest.skip(f"{message}; CI runs these tests")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateRedis:
    """One ``redis-server`` process; its data survives a restart only when asked to."""

    def __init__(self, directory: Path) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.executable = executable
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, with_data: bool = False) -> None:
        """Start it; with ``with_data`` it loads what ``stop(keep_data=True)`` saved."""
        dump = self.directory / "dump.rdb"
        if not with_data:
            dump.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [
                self.executable,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                "--dbfilename", "dump.rdb",
                "--enable-debug-command", "local",
                "--logfile", str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._answers():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server did not start on port {self.port}; see "
                    f"{self.directory / 'redis.log'}"
                )
            time.sleep(0.02)

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except Exception:
            return False

    def stop(self, *, keep_data: bool = False) -> None:
        """Shut it down, saving its data first with ``keep_data`` (as persistence would)."""
        if self.process is None:
            return
        # redis-py raises when the server closes the connection (or is gone already).
        with contextlib.suppress(Exception):
            self.client().shutdown(save=keep_data, nosave=not keep_data)
        try:
            self.process.wait(timeout=START_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def client(self) -> Any:
        import redis

        return redis.Redis(port=self.port, socket_timeout=5, socket_connect_timeout=5)

    def pause(self, seconds: float) -> None:
        """``CLIENT PAUSE ... ALL``: every client's commands wait until it ends."""
        self.client().execute_command("CLIENT", "PAUSE", int(seconds * 1000), "ALL")

    def sleep(self, seconds: float) -> threading.Thread:
        """``DEBUG SLEEP``: the server answers nobody meanwhile. Returns the thread that waits."""
        started = threading.Event()

        def block() -> None:
            client = self.client()
            client.ping()
            started.set()
            client.execute_command("DEBUG", "SLEEP", seconds)

        thread = threading.Thread(target=block, daemon=True)
        thread.start()
        started.wait(START_TIMEOUT_SECONDS)
        time.sleep(0.05)  # the DEBUG SLEEP has reached the server
        return thread
