"""The one command: ``python -m benchmarks`` builds, measures, reports.

Starts one worker process per environment (database x connection policy),
has the first worker of each database build the data, prepares every
configuration, then measures them in interleaved rounds: in each round every
worker in turn measures one batch of each of its configurations, in a
shuffled order. Ratios are taken within a round (each configuration against
the empty view and the full render measured in the same round and process)
and their medians reported. Then the scaling part, the profile, and the
loopback part with gunicorn and wrk.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from benchmarks.configs import ENVIRONMENTS, SCALE_SIZES, STORES, Environment, main_configs

__all__ = ["Options", "WorkerProcess", "main", "parse_args", "say"]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results"
REDIS_URL = "redis://127.0.0.1:6379/9"
KEY_PREFIX = "djcbench"


@dataclass
class Options:
    """What one run measures and for how long."""

    quick: bool
    databases: list[str]
    stores: list[str]
    conn_max_ages: list[str]
    output: Path
    redis_url: str
    rounds: int
    batch_seconds: float
    warm_seconds: float
    scaling: bool
    scale_sizes: tuple[int, ...]
    scale_rounds: int
    loopback: bool
    loopback_seconds: int
    loopback_rounds: int
    loopback_workers: int
    profile: bool
    profile_seconds: float
    chart: bool
    keep_data: bool
    seed: int
    # Every Redis key of this run starts with it: concurrent runs never touch each other's.
    key_prefix: str = field(default_factory=lambda: f"{KEY_PREFIX}-{os.getpid()}")
    argv: list[str] = field(default_factory=list)


def parse_args(argv: list[str] | None = None) -> Options:
    """Command-line options (``python -m benchmarks --help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure django-conditional against an empty view, the full render and "
        "Django's own conditional views; print ratios, write JSON and a chart.",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument(
        "--databases",
        default="sqlite,postgresql",
        help="comma-separated: sqlite, postgresql (default: both)",
    )
    parser.add_argument(
        "--stores",
        default=",".join(STORES),
        help=f"comma-separated stores for ours (default: {','.join(STORES)})",
    )
    parser.add_argument(
        "--conn-max-age",
        default="persistent,0",
        help="comma-separated connection policies: persistent (None), 0 (default: both)",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results folder")
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", REDIS_URL), help="Redis db"
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 7, quick 2)")
    parser.add_argument("--no-scaling", action="store_true", help="skip the scaling part")
    parser.add_argument("--no-loopback", action="store_true", help="skip gunicorn + wrk")
    parser.add_argument("--no-profile", action="store_true", help="skip the profile")
    parser.add_argument("--no-chart", action="store_true", help="write no PNG chart")
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="keep the SQLite file and the PostgreSQL database afterwards (default: remove them)",
    )
    parser.add_argument("--loopback-workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--seed", type=int, default=20240601, help="shuffling seed")
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    ages = [a.strip() for a in args.conn_max_age.split(",") if a.strip()]
    for name, values, allowed in (
        ("--databases", databases, {"sqlite", "postgresql"}),
        ("--stores", stores, set(STORES)),
        ("--conn-max-age", ages, {"persistent", "0"}),
    ):
        unknown = [v for v in values if v not in allowed]
        if unknown or not values:
            parser.error(f"{name} {','.join(values)!r}: expected some of {sorted(allowed)}")
    return Options(
        quick=quick,
        databases=databases,
        stores=stores,
        conn_max_ages=ages,
        output=args.output.resolve(),
        redis_url=args.redis_url,
        rounds=args.rounds or (2 if quick else 7),
        batch_seconds=0.02 if quick else 0.12,
        warm_seconds=0.02 if quick else 0.25,
        scaling=not args.no_scaling,
        scale_sizes=SCALE_SIZES[:2] if quick else SCALE_SIZES,
        scale_rounds=2 if quick else 5,
        loopback=not args.no_loopback,
        loopback_seconds=1 if quick else 2,
        loopback_rounds=1 if quick else 3,
        loopback_workers=args.loopback_workers,
        profile=not args.no_profile,
        profile_seconds=0.3 if quick else 3.0,
        chart=not args.no_chart,
        keep_data=bool(args.keep_data),
        seed=args.seed,
        argv=list(sys.argv[1:] if argv is None else argv),
    )


# --- prerequisites ---------------------------------------------------------------------


class Unavailable(RuntimeError):
    """Something the requested run needs is missing: say what and how to proceed."""


def postgres_admin(connect_timeout: int = 10) -> Any:
    """A connection to the server's ``postgres`` database (``PG*`` variables, as settings)."""
    import psycopg

    return psycopg.connect(
        dbname="postgres",
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=os.environ.get("PGPORT", "5432"),
        user=os.environ.get("PGUSER", "postgres"),
        password=os.environ.get("PGPASSWORD") or None,
        connect_timeout=connect_timeout,
        autocommit=True,
    )


def check_prerequisites(options: Options) -> None:
    """Fail at once, naming what is missing, rather than skipping part of the run."""
    problems: list[str] = []
    if "postgresql" in options.databases:
        try:
            postgres_admin(connect_timeout=3).close()
        except Exception as error:
            problems.append(
                f"PostgreSQL is not reachable ({error}); start it or pass --databases sqlite."
            )
    if any(STORES[s].stamp_cache == "redis" for s in options.stores):
        try:
            import redis

            client = redis.Redis.from_url(options.redis_url, socket_connect_timeout=3)
            client.ping()
            client.close()
        except Exception as error:
            problems.append(
                f"Redis at {options.redis_url} is not usable ({error}); start it, install "
                "the redis extra, or pass --stores locmem,db."
            )
    if options.loopback:
        if shutil.which("wrk") is None:
            problems.append("wrk is not installed (apt-get install wrk), or pass --no-loopback.")
        try:
            import gunicorn  # noqa: F401
        except ImportError:
            problems.append("gunicorn is not installed (the bench extra), or pass --no-loopback.")
    if options.chart:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            problems.append("matplotlib is not installed (the bench extra), or pass --no-chart.")
    if options.profile:
        try:
            import pyinstrument  # noqa: F401
        except ImportError:
            problems.append(
                "pyinstrument is not installed (the bench extra), or pass --no-profile."
            )
    if problems:
        raise Unavailable("\n".join(problems))


def clear_redis(url: str, prefix: str) -> None:
    """Delete this run's keys (and only those) from its Redis database."""
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def remove_data(options: Options) -> None:
    """Remove what the run built (it is built again by every run), and empty logs."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        (options.output / f"bench.sqlite3{suffix}").unlink(missing_ok=True)
    for log in options.output.glob("*.log"):
        if not log.stat().st_size:
            log.unlink()
    if "postgresql" in options.databases:
        from psycopg import sql

        with postgres_admin() as admin:
            name = sql.Identifier(os.environ.get("BENCH_PG_NAME", "bench_conditional"))
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


# --- workers ---------------------------------------------------------------------------


def bench_environment(**variables: str) -> dict[str, str]:
    """The process environment of a worker or a gunicorn server."""
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [environ.get("PYTHONPATH")])])
    environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    environ.update(variables)
    return environ


class WorkerProcess:
    """A worker subprocess for one environment, driven by JSON lines."""

    def __init__(self, environment: Environment, options: Options) -> None:
        self.environment = environment
        log_path = options.output / f"worker-{environment.name.replace('/', '-')}.log"
        self.log: IO[str] = log_path.open("w")
        self.log_path = log_path
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=bench_environment(
                BENCH_DATABASE=environment.database,
                BENCH_CONN_MAX_AGE=environment.conn_max_age,
                BENCH_SQLITE_PATH=str(options.output / "bench.sqlite3"),
                BENCH_REDIS_URL=options.redis_url,
                BENCH_KEY_PREFIX=f"{options.key_prefix}-{environment.name}",
            ),
        )

    def send(self, command: str, **arguments: Any) -> None:
        """Send a command without waiting for its answer."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"command": command, **arguments}) + "\n")
        self.process.stdin.flush()

    def receive(self) -> Any:
        """The answer to the last command sent."""
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.log.flush()
            tail = self.log_path.read_text()[-3000:]
            raise RuntimeError(f"worker {self.environment.name} died:\n{tail}")
        answer = json.loads(line)
        if not answer["ok"]:
            raise RuntimeError(f"worker {self.environment.name} failed:\n{answer['error']}")
        return answer["result"]

    def call(self, command: str, **arguments: Any) -> Any:
        """Send a command and wait for its answer."""
        self.send(command, **arguments)
        return self.receive()

    def close(self) -> None:
        """Ask the worker to stop, and wait for it."""
        if self.process.poll() is None:
            try:
                self.send("quit")
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        self.log.close()


_STARTED = time.monotonic()


def say(message: str) -> None:
    """Progress on stderr, with the seconds since the run started."""
    print(f"[{time.monotonic() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# --- the run -----------------------------------------------------------------------------


def run_in_process(options: Options, results: dict[str, Any]) -> None:
    """Build, prepare and measure every environment in interleaved rounds; then scale, profile."""
    environments = [
        env
        for env in ENVIRONMENTS
        if env.database in options.databases and env.conn_max_age in options.conn_max_ages
    ]
    workers = [WorkerProcess(env, options) for env in environments]
    try:
        say("Building the data (10,000 articles; scaling tables)...")
        builders: dict[str, WorkerProcess] = {}
        for worker in workers:
            builders.setdefault(worker.environment.database, worker)
        sizes = list(options.scale_sizes) if options.scaling else []
        for builder in builders.values():
            builder.send("build", sizes=sizes)
        results["build_seconds"] = {
            database: builder.receive() for database, builder in builders.items()
        }
        prepared: dict[str, list[dict[str, Any]]] = {}
        for worker in workers:
            say(f"Preparing {worker.environment.label}...")
            prepared[worker.environment.name] = worker.call(
                "prepare",
                stores=options.stores,
                warm_seconds=options.warm_seconds,
                batch_seconds=options.batch_seconds,
            )
        names = [config.name for config in main_configs(options.stores)]
        rounds: dict[str, dict[str, list[float]]] = {
            w.environment.name: {name: [] for name in names} for w in workers
        }
        shuffler = random.Random(options.seed)
        for number in range(options.rounds):
            say(f"Round {number + 1} of {options.rounds}...")
            order = workers[number % len(workers) :] + workers[: number % len(workers)]
            for worker in order:
                shuffled = list(names)
                shuffler.shuffle(shuffled)
                for name, seconds in worker.call("round", order=shuffled).items():
                    rounds[worker.environment.name][name].append(seconds)
        results["main"] = {
            "environments": {
                w.environment.name: {
                    "label": w.environment.label,
                    "database": w.environment.database,
                    "conn_max_age": w.environment.conn_max_age,
                    "prepared": prepared[w.environment.name],
                    "rounds": rounds[w.environment.name],
                }
                for w in workers
            },
        }
        if options.scaling:
            run_scaling(
                options,
                [w for w in workers if w.environment.conn_max_age == "persistent"] or workers[:1],
                results,
                shuffler,
            )
        if options.profile:
            profiler = next(
                (w for w in workers if w.environment.name == "sqlite/persistent"), workers[0]
            )
            say(f"Profiling the warm 304 path ({profiler.environment.label})...")
            names_to_profile = (
                ["empty/200"]
                + [
                    f"{way}/{store}/304"
                    for way, store in (
                        ("ours-queryset", "locmem"),
                        ("ours-queryset", "redis"),
                        ("ours-queryset", "db"),
                        ("ours-mixin", "locmem"),
                        ("ours-depends-on", "locmem"),
                        ("ours-depends-on", "redis"),
                        ("rule", "locmem"),
                        ("rule", "redis"),
                        ("rule-1k", "locmem"),
                    )
                    if store in options.stores
                ]
                + [
                    f"{way}/locmem/200"
                    for way in ("no-match", "no-match-1k")
                    if "locmem" in options.stores
                ]
            )
            results["profile"] = profiler.call(
                "profile",
                names=names_to_profile,
                seconds=options.profile_seconds,
                output=str(options.output / "profile.txt"),
            )
            results["profile"]["environment"] = profiler.environment.name
    finally:
        for worker in workers:
            worker.close()


def run_scaling(
    options: Options,
    workers: list[WorkerProcess],
    results: dict[str, Any],
    shuffler: random.Random,
) -> None:
    """Validator cost by table size: steady state and first request after a write."""
    from benchmarks.configs import scale_configs

    scaling: dict[str, Any] = {}
    names = ["empty/200", *(config.name for config in scale_configs(options.scale_sizes))]
    for worker in workers:
        say(f"Preparing the scaling tables ({worker.environment.label})...")
        scaling[worker.environment.name] = {
            "label": worker.environment.label,
            "prepared": worker.call(
                "scale_prepare",
                sizes=list(options.scale_sizes),
                warm_seconds=options.warm_seconds,
                batch_seconds=options.batch_seconds,
            ),
            "rounds": {name: [] for name in names},
            "after_write": {},
        }
    for number in range(options.scale_rounds):
        say(f"Scaling round {number + 1} of {options.scale_rounds}...")
        for worker in workers:
            entry = scaling[worker.environment.name]
            pairs = [(size, subset) for size in options.scale_sizes for subset in (False, True)]
            shuffler.shuffle(pairs)
            for size, subset in pairs:
                sample = worker.call("after_write", size=size, subset=subset)
                entry["after_write"].setdefault(sample["name"], []).append(sample)
            shuffled = list(names)
            shuffler.shuffle(shuffled)
            for name, seconds in worker.call("scale_round", order=shuffled).items():
                entry["rounds"][name].append(seconds)
    results["scaling"] = scaling


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table; write the JSON, text and chart."""
    from benchmarks import report

    options = parse_args(argv)
    try:
        check_prerequisites(options)
    except Unavailable as error:
        print(f"Cannot run the benchmark:\n{error}", file=sys.stderr)
        return 2
    options.output.mkdir(parents=True, exist_ok=True)
    started = time.time()
    results: dict[str, Any] = {
        "meta": report.run_metadata(options),
    }
    uses_redis = any(STORES[s].stamp_cache == "redis" for s in options.stores)
    try:
        run_in_process(options, results)
        if options.loopback:
            from benchmarks.loopback import run_loopback

            results["loopback"] = run_loopback(options)
    finally:
        if uses_redis:
            clear_redis(options.redis_url, options.key_prefix)
        if not options.keep_data:
            remove_data(options)
    results["meta"]["duration_seconds"] = time.time() - started
    results["meta"]["load_average_after"] = list(os.getloadavg())
    text = report.write_reports(results, options)
    print(text)
    return 0
