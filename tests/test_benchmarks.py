"""The benchmark's smoke run: ``python -m benchmarks --quick`` on SQLite.

No timing is asserted (a shared CI machine cannot promise any): the run must
finish, measure every configuration of the main table and of the scaling
part, write its JSON with positive ratios, and see the query counts each
configuration must have. The run excludes, by its own flags, what this test
does not exercise: PostgreSQL, the loopback part (gunicorn and wrk), the
profile and the chart; the chart is drawn from the run's JSON by its own test.
The Redis stores are measured when Redis answers, and their checks are
skipped (with the reason) otherwise, or fail when ``CONDITIONAL_TEST_CACHE=redis``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report, runner
from benchmarks.configs import STORES, WAYS, main_configs, scale_configs

pytestmark = pytest.mark.stateful

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
LOCAL_STORES = ["locmem", "db"]
REDIS_STORES = ["redis", "redis+locmem"]
ENVIRONMENTS = ["sqlite/persistent", "sqlite/conn0"]


def _redis_unavailable() -> str | None:
    """Why the Redis stores cannot be measured here, or None when they can."""
    try:
        import redis
    except ImportError:
        return "redis-py is not installed (the redis extra)"
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.close()
    except redis.RedisError as error:
        return f"Redis at {REDIS_URL} does not answer ({error})"
    return None


REDIS_UNAVAILABLE = _redis_unavailable()
STORES_RUN = LOCAL_STORES + ([] if REDIS_UNAVAILABLE else REDIS_STORES)


def expected_queries(name: str) -> int:
    """SQL statements per request each configuration must run, warm."""
    way, *rest = name.split("/")
    store, path = (rest[0], rest[1]) if len(rest) == 2 else (None, rest[0])
    page = 2  # the page's rows and the count
    if way == "empty" or (WAYS[way].through_rules and not WAYS[way].conditional):
        # The empty view, alone or through the middleware that no rule matches (the
        # rules are held in memory; the db store's check of their stamps, once a
        # second, is not the typical request).
        return 0
    if way in {"full", "django-middleware"}:
        return page
    if way == "django-condition":
        return 1 if path == "304" else 1 + page
    # Ours, and the rule ways: stamps in a cache cost no query; in the database, one.
    stamps = 1 if STORES[str(store)].stamp_cache is None else 0
    return stamps if path == "304" else stamps + page


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    output = tmp_path_factory.mktemp("bench")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--databases",
            "sqlite",
            "--stores",
            ",".join(STORES_RUN),
            "--no-loopback",
            "--no-profile",
            "--no-chart",
            "--output",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BENCH_REDIS_URL": REDIS_URL},
    )
    assert completed.returncode == 0, completed.stderr[-5000:]
    return {
        "stdout": completed.stdout,
        "output": output,
        "json": json.loads((output / "results.json").read_text()),
    }


def _rows(run: dict[str, Any], environment: str) -> dict[str, Any]:
    rows: dict[str, Any] = run["json"]["summary"]["main"][environment]["rows"]
    return rows


def test_files_are_written(run):
    output = run["output"]
    for name in ("results.json", "results.txt", "summary.md"):
        assert (output / name).stat().st_size > 0, name
    # The data is built by every run and removed after it.
    assert not list(output.glob("bench.sqlite3*"))
    assert (output / "results.txt").read_text().strip() == run["stdout"].strip()
    meta = run["json"]["meta"]
    assert meta["quick"] is True
    assert meta["databases"] == ["sqlite"]
    assert meta["stores"] == STORES_RUN


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_configuration_is_measured(run, environment):
    expected = {config.name for config in main_configs(STORES_RUN)}
    assert set(_rows(run, environment)) == expected
    section = next(
        part
        for part in run["stdout"].split("== ")
        if part.startswith("SQLite") and environment in part
    )
    for config in main_configs(STORES_RUN):
        label = WAYS[config.way].label
        store = config.store or "-"
        path = "304" if config.revalidation else "200"
        assert any(
            line.startswith(label)
            and line.split()[len(label.split())] == store
            and line.split()[len(label.split()) + 1] == path
            for line in section.splitlines()
        ), (environment, config.name)


def test_ratios_are_positive_numbers(run):
    ratios = run["json"]["ratios"]
    main_names = [name for name in ratios if name.startswith("main/")]
    # Four ratios per configuration of ours' 304 path, two per other configuration, and
    # one more where 1,000 rules are compared to 10.
    per_environment = sum(
        (4 if c.revalidation and WAYS[c.way].ours else 2) + (1 if WAYS[c.way].fewer_rules else 0)
        for c in main_configs(STORES_RUN)
    )
    assert len(main_names) == per_environment * len(ENVIRONMENTS)
    for name, value in ratios.items():
        assert isinstance(value, float), name
        assert math.isfinite(value), name
        assert value > 0 or "validator_cost" in name, (name, value)
    for environment in ENVIRONMENTS:
        for name, row in _rows(run, environment).items():
            for key in ("vs_empty", "vs_full_render"):
                assert 0 < row[key]["q1"] <= row[key]["median"] <= row[key]["q3"], (name, key)
            assert row["us_per_request"] > 0
        assert _rows(run, environment)["empty/200"]["vs_empty"]["median"] == 1.0


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_query_counts(run, environment):
    for name, row in _rows(run, environment).items():
        assert row["queries_per_request"] == expected_queries(name), name
        # CONN_MAX_AGE=0: a connection per request that queries, none for one that does not.
        connections = 1 if environment.endswith("conn0") and expected_queries(name) else 0
        assert row["connections_per_request"] == connections, name


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_rule_ways_answer_before_the_view(run, environment):
    rows = _rows(run, environment)
    through_rules = {name: row for name, row in rows.items() if WAYS[row["way"]].through_rules}
    assert {row["way"] for row in through_rules.values()} == {
        "rule",
        "rule-1k",
        "no-match",
        "no-match-1k",
    }
    for name, row in through_rules.items():
        if WAYS[row["way"]].conditional:
            # The rule's 304 never runs the view; its 200 runs it once.
            assert row["view_runs"] == (0 if row["path"] == "304" else 1), name
        if WAYS[row["way"]].fewer_rules:
            assert row["vs_fewer_rules"]["median"] > 0, name


def test_redis_warm_304_runs_no_query(run):
    if REDIS_UNAVAILABLE:
        # A run that asked for Redis must not pass without it (as tests/conftest.py says).
        if os.environ.get("CONDITIONAL_TEST_CACHE", "").lower() == "redis":
            pytest.fail(f"CONDITIONAL_TEST_CACHE=redis, but {REDIS_UNAVAILABLE}")
        pytest.skip(f"Redis stores not measured: {REDIS_UNAVAILABLE}")
    for environment in ENVIRONMENTS:
        rows = _rows(run, environment)
        for way in ("ours-queryset", "ours-mixin", "ours-depends-on", "rule", "rule-1k"):
            for store in REDIS_STORES:
                assert rows[f"{way}/{store}/304"]["queries_per_request"] == 0
                assert rows[f"{way}/{store}/304"]["connections_per_request"] == 0


def test_scaling_is_measured(run):
    scaling = run["json"]["summary"]["scaling"]
    assert list(scaling) == ["sqlite/persistent"]
    part = scaling["sqlite/persistent"]
    assert set(part["steady"]) == {c.name for c in scale_configs((1_000, 10_000))}
    for row in part["steady"].values():
        assert row["us_per_request"] > 0
        assert row["vs_empty"]["median"] > 0
    assert set(part["after_write"]) == {
        f"{size}/{subset}/ours" for size in (1_000, 10_000) for subset in ("whole", "subset")
    }
    for row in part["after_write"].values():
        # The first request after a write recomputes: one aggregate (stamps in memory).
        assert row["queries"] == 1
        assert row["ms_first_request"] > 0


def test_targets_are_evaluated(run):
    targets = run["json"]["targets"]
    measured = {check["target"] for check in targets}
    expected = set(report.TARGETS) - {"warm-304-redis-loopback"}
    if REDIS_UNAVAILABLE:
        expected.discard("warm-304-redis-in-process")
    assert measured == expected
    for check in targets:
        assert isinstance(check["met"], bool)
        assert math.isfinite(check["measured"])
    for line in report.TARGETS.values():
        assert line in run["stdout"]


def test_chart_from_results(run, tmp_path):
    pytest.importorskip("matplotlib", reason="the chart needs matplotlib (the bench extra)")
    chart = tmp_path / "chart.png"
    report.write_chart(run["json"]["summary"], chart)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_option_values_are_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        runner.parse_args(["--databases", "oracle"])
    assert exit_info.value.code == 2
    assert "--databases 'oracle'" in capsys.readouterr().err


def test_missing_service_stops_the_run_at_once(tmp_path, capsys):
    code = runner.main(
        [
            "--quick",
            "--databases",
            "sqlite",
            "--stores",
            "redis",
            "--redis-url",
            "redis://127.0.0.1:1/9",
            "--no-loopback",
            "--no-profile",
            "--no-chart",
            "--output",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "redis://127.0.0.1:1/9" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()
