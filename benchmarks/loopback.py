"""Over loopback: gunicorn with several workers on 127.0.0.1, driven by wrk.

One gunicorn server per shared store (stamps must be shared between
gunicorn's worker processes for the tags to agree), each serving every view.
wrk runs each configuration for a bounded time and a bounded number of
requests, in shuffled rounds; a Lua script counts every response's status so
that a configuration answering 200 where it should answer 304 fails the run.
"""

from __future__ import annotations

import http.client
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from benchmarks.configs import LOOPBACK_WAYS, STORES, WAYS
from benchmarks.runner import ROOT, Options, bench_environment, free_port, say

__all__ = ["LoopbackConfig", "Server", "run_loopback", "run_wrk"]

# Stops each wrk thread after this many responses, whatever the duration.
MAX_REQUESTS = 200_000

_LUA = """
local limit = tonumber(os.getenv("WRK_MAX_REQUESTS")) or 200000
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) expected = tonumber(args[1]); seen = 0; wrong = 0 end
function response(status, headers, body)
  seen = seen + 1
  if status ~= expected then wrong = wrong + 1 end
  if seen >= limit then wrk.thread:stop() end
end
function done(summary, latency, requests)
  local total_seen, total_wrong = 0, 0
  for _, thread in ipairs(threads) do
    total_seen = total_seen + thread:get("seen")
    total_wrong = total_wrong + thread:get("wrong")
  end
  io.write(string.format("BENCH seen=%d wrong=%d requests=%d duration_us=%d errors=%d\\n",
    total_seen, total_wrong, summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout))
end
"""
_RESULT = re.compile(r"BENCH seen=(\d+) wrong=(\d+) requests=(\d+) duration_us=(\d+) errors=(\d+)")


@dataclass
class Server:
    """A gunicorn server on 127.0.0.1 for one store."""

    store: str
    port: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def stop(self) -> None:
        """Stop the master (and with it its workers) and wait for it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@dataclass
class LoopbackConfig:
    """One loopback measurement."""

    way: str
    store: str | None
    revalidation: bool
    server: Server
    etag: str | None = None

    @property
    def name(self) -> str:
        """As in the main table: ``ours-queryset/redis/304``."""
        parts = [self.way] + ([self.store] if self.store else [])
        return "/".join([*parts, "304" if self.revalidation else "200"])

    @property
    def expected_status(self) -> int:
        """What every response must be."""
        return 304 if self.revalidation else 200


def start_server(store: str, database: str, options: Options) -> Server:
    """Start gunicorn for ``store`` and wait until it answers."""
    port = free_port()
    log = (options.output / f"gunicorn-{store}.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "benchmarks.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(options.loopback_workers),
            "--worker-class",
            "sync",
            "--log-level",
            "warning",
            "--timeout",
            "60",
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=bench_environment(
            BENCH_DATABASE=database,
            BENCH_CONN_MAX_AGE="persistent",
            BENCH_SQLITE_PATH=str(options.output / "bench.sqlite3"),
            BENCH_REDIS_URL=options.redis_url,
            BENCH_KEY_PREFIX=f"{options.key_prefix}-loopback",
            BENCH_STORE=store,
        ),
    )
    server = Server(store, port, process, log)
    deadline = time.monotonic() + 30
    while True:
        try:
            status, _ = fetch(port, "/empty/")
            if status == 200:
                return server
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(
                f"gunicorn for {store} did not start; see {options.output}/gunicorn-{store}.log"
            )
        time.sleep(0.2)


def fetch(port: int, path: str, if_none_match: str | None = None) -> tuple[int, str | None]:
    """One GET to 127.0.0.1: the status and the ETag."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"If-None-Match": if_none_match} if if_none_match else {}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("ETag")
    finally:
        connection.close()


def run_wrk(
    config: LoopbackConfig, seconds: float, connections: int, script: Path
) -> dict[str, float]:
    """Run wrk against one configuration; requests per second and counts."""
    command = [
        "wrk",
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{max(1, round(seconds))}s",  # wrk counts whole seconds
        "--timeout",
        "5s",
        "--script",
        str(script),
    ]
    if config.etag:
        command += ["--header", f"If-None-Match: {config.etag}"]
    command += [
        f"http://127.0.0.1:{config.server.port}{WAYS[config.way].path}",
        "--",
        str(config.expected_status),
    ]
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
        env={"WRK_MAX_REQUESTS": str(MAX_REQUESTS), "PATH": "/usr/bin:/bin"},
    )
    match = _RESULT.search(completed.stdout)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{completed.stdout}\n{completed.stderr}")
    seen, wrong, requests, duration_us, errors = (int(group) for group in match.groups())
    if wrong or not requests:
        raise RuntimeError(
            f"{config.name}: {wrong} of {seen} responses were not {config.expected_status}."
        )
    return {"rps": requests / (duration_us / 1e6), "requests": requests, "errors": errors}


def run_loopback(options: Options) -> dict[str, Any]:
    """Measure the loopback configurations; the raw per-round requests per second."""
    database = "postgresql" if "postgresql" in options.databases else "sqlite"
    stores = [store for store in options.stores if STORES[store].shared]
    script = options.output / "wrk-count.lua"
    script.write_text(_LUA)
    say(
        f"Loopback: gunicorn ({options.loopback_workers} workers) on {database}, "
        f"stores {', '.join(stores) or 'none'}..."
    )
    servers = {store: start_server(store, database, options) for store in stores or ["db"]}
    try:
        first = next(iter(servers.values()))
        configs = [
            LoopbackConfig(name, None, WAYS[name].conditional, first)
            for name in LOOPBACK_WAYS
            if not WAYS[name].ours
        ]
        configs += [
            LoopbackConfig(name, store, True, servers[store])
            for name in LOOPBACK_WAYS
            if WAYS[name].ours
            for store in stores
        ]
        connections = max(2, 2 * options.loopback_workers)
        for config in configs:
            path = WAYS[config.way].path
            status, etag = fetch(config.server.port, path)
            if status != 200:
                raise RuntimeError(f"{config.name}: GET {path} answered {status}.")
            if config.revalidation:
                config.etag = etag
                status, _ = fetch(config.server.port, path, etag)
                if status != 304:
                    raise RuntimeError(f"{config.name}: revalidation answered {status}.")
            # Warm every worker's caches and connections.
            run_wrk(config, 1, connections, script)
        rounds: dict[str, list[float]] = {config.name: [] for config in configs}
        errors: dict[str, int] = {config.name: 0 for config in configs}
        shuffler = random.Random(options.seed + 1)
        for number in range(options.loopback_rounds):
            say(f"Loopback round {number + 1} of {options.loopback_rounds}...")
            order = list(configs)
            shuffler.shuffle(order)
            for config in order:
                measured = run_wrk(config, options.loopback_seconds, connections, script)
                rounds[config.name].append(measured["rps"])
                errors[config.name] += int(measured["errors"])
    finally:
        for server in servers.values():
            server.stop()
        script.unlink(missing_ok=True)
    return {
        "database": database,
        "workers": options.loopback_workers,
        "worker_class": "sync",
        "connections": connections,
        "seconds_per_run": options.loopback_seconds,
        "rounds": rounds,
        "socket_errors": errors,
    }
