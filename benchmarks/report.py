"""Turn the raw per-round timings into ratios, a text table, JSON, a chart and targets.

Every ratio is taken within one round (the two configurations were measured
minutes apart at most, in the same process) and the median over rounds is
reported with its interquartile range, which is the run's noise.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.configs import STORES, WAYS, Config, main_configs

if TYPE_CHECKING:
    from benchmarks.runner import Options

__all__ = [
    "TARGETS",
    "Check",
    "Spread",
    "evaluate_targets",
    "run_metadata",
    "spread",
    "summarize",
    "write_reports",
]

ROOT = Path(__file__).resolve().parent.parent

# Performance targets of issues 4 and 12 (ratios measured in one run; not asserted in tests).
TARGETS = {
    "warm-304-single-process": "warm 304, one process (SQLite, local memory): >= 0.85 x empty",
    "warm-304-redis-in-process": "warm 304, shared Redis, in process: >= 0.6 x empty",
    "warm-304-redis-loopback": "warm 304, shared Redis, over loopback: >= 0.8 x empty",
    "scaling-flat": "steady-state validator cost at 1M rows within 1.2 x of 1k",
    "miss-path": "miss (200) within noise of the full render",
    "vs-django-condition": ">= 10 x Django condition + aggregate (304), in process",
    "vs-django-middleware": ">= 100 x ConditionalGetMiddleware (304), in process",
    "rule-warm-304-single-process": "warm 304 through a rule, one process, local memory: "
    ">= 0.95 x empty",
    "rule-warm-304-redis-in-process": "warm 304 through a rule, shared Redis, in process: "
    ">= 0.8 x empty",
    "no-match-overhead": "no rule matches, through the middleware: >= 0.97 x without it",
    "rules-indexed": "1,000 enabled rules cost no more than 10 (within noise)",
}

# Targets whose bound is an upper one (the others are lower bounds).
_UPPER_BOUNDS = {"scaling-flat"}


# --- statistics --------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """A median with its quartiles."""

    median: float
    q1: float
    q3: float

    @property
    def noise(self) -> float:
        """The interquartile range relative to the median."""
        return (self.q3 - self.q1) / self.median if self.median else 0.0


def spread(values: Sequence[float]) -> Spread:
    """Median and quartiles (the quartiles are the extremes with fewer than 4 values)."""
    ordered = sorted(values)
    median = statistics.median(ordered)
    if len(ordered) < 4:
        return Spread(median, ordered[0], ordered[-1])
    q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return Spread(median, q1, q3)


def _ratios(reference: Sequence[float], measured: Sequence[float]) -> Spread:
    """Throughput of ``measured`` relative to ``reference``, round by round (times in)."""
    return spread([ref / value for ref, value in zip(reference, measured, strict=True)])


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 0.1:
        return f"{value:.3f}"
    return f"{value:.4f}"


def _fmt_spread(value: Spread) -> str:
    return f"{_fmt(value.median)} [{_fmt(value.q1)}-{_fmt(value.q3)}]"


# --- summaries ---------------------------------------------------------------------------


def _config_of(name: str) -> Config:
    parts = name.split("/")
    store = parts[1] if len(parts) == 3 else None
    return Config(parts[0], store, parts[-1] == "304")


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """Every ratio, named: main table, scaling, loopback."""
    summary: dict[str, Any] = {"main": {}, "scaling": {}, "loopback": {}}
    for env_name, env in results.get("main", {}).get("environments", {}).items():
        rounds = env["rounds"]
        prepared = {item["name"]: item for item in env["prepared"]}
        empty, full = rounds["empty/200"], rounds["full/200"]
        condition, middleware = rounds["django-condition/304"], rounds["django-middleware/304"]
        rows = {}
        for name, times in rounds.items():
            config = _config_of(name)
            time_spread = spread(times)
            row: dict[str, Any] = {
                "way": config.way,
                "store": config.store,
                "path": "304" if config.revalidation else "200",
                "us_per_request": time_spread.median * 1e6,
                "requests_per_second": 1 / time_spread.median,
                "vs_empty": asdict(_ratios(empty, times)),
                "vs_full_render": asdict(_ratios(full, times)),
                "queries_per_request": prepared[name]["queries"],
                "connections_per_request": prepared[name]["connections"],
            }
            if "view_runs" in prepared[name]:
                row["view_runs"] = prepared[name]["view_runs"]
            way = WAYS[config.way]
            if config.revalidation and way.ours and way.conditional:
                # How many times Django's throughput: their time over ours.
                row["vs_django_condition"] = asdict(_ratios(condition, times))
                row["vs_django_middleware"] = asdict(_ratios(middleware, times))
            if way.fewer_rules:
                # The same request with 10 enabled rules, round by round.
                fewer = Config(way.fewer_rules, config.store, config.revalidation).name
                row["vs_fewer_rules"] = asdict(_ratios(rounds[fewer], times))
            rows[name] = row
        summary["main"][env_name] = {"label": env["label"], "rounds": len(empty), "rows": rows}
    for env_name, env in results.get("scaling", {}).items():
        rounds = env["rounds"]
        empty = rounds["empty/200"]
        empty_median = statistics.median(empty)
        rows = {}
        for name, times in rounds.items():
            if name == "empty/200":
                continue
            median = statistics.median(times)
            rows[name] = {
                "us_per_request": median * 1e6,
                "validator_us": (median - empty_median) * 1e6,
                "vs_empty": asdict(_ratios(empty, times)),
            }
        after = {
            name: {
                "ms_first_request": statistics.median(s["seconds"] for s in samples) * 1e3,
                "samples": len(samples),
                "queries": samples[-1]["queries"],
            }
            for name, samples in env["after_write"].items()
        }
        for name, row in after.items():
            django = rows.get(name.replace("/ours", "/django"))
            if django:
                row["vs_django_aggregate"] = (
                    row["ms_first_request"] * 1e3 / django["us_per_request"]
                )
        summary["scaling"][env_name] = {
            "label": env["label"],
            "empty_us": empty_median * 1e6,
            "steady": rows,
            "after_write": after,
        }
    loopback = results.get("loopback")
    if loopback:
        rounds = loopback["rounds"]
        empty = [1 / rps for rps in rounds["empty/200"]]
        full = [1 / rps for rps in rounds["full/200"]]
        rows = {}
        for name, values in rounds.items():
            times = [1 / rps for rps in values]
            rows[name] = {
                "requests_per_second": statistics.median(values),
                "vs_empty": asdict(_ratios(empty, times)),
                "vs_full_render": asdict(_ratios(full, times)),
                "socket_errors": loopback["socket_errors"][name],
            }
        summary["loopback"] = {
            key: loopback[key]
            for key in ("database", "workers", "worker_class", "connections", "seconds_per_run")
        } | {"rounds": len(empty), "rows": rows}
    return summary


def flat_ratios(summary: dict[str, Any]) -> dict[str, float]:
    """Every ratio under one name, for comparing runs: ``main/sqlite/persistent/.../vs_empty``."""
    flat: dict[str, float] = {}
    for env_name, env in summary["main"].items():
        for name, row in env["rows"].items():
            for key in (
                "vs_empty",
                "vs_full_render",
                "vs_django_condition",
                "vs_django_middleware",
                "vs_fewer_rules",
            ):
                if key in row:
                    flat[f"main/{env_name}/{name}/{key}"] = row[key]["median"]
    for env_name, env in summary["scaling"].items():
        for name, row in env["steady"].items():
            flat[f"scaling/{env_name}/{name}/steady/vs_empty"] = row["vs_empty"]["median"]
        for check in _scaling_ratios(env):
            flat[f"scaling/{env_name}/{check[0]}"] = check[1]
        for name, row in env["after_write"].items():
            if "vs_django_aggregate" in row:
                flat[f"scaling/{env_name}/{name}/after_write/vs_django_aggregate"] = row[
                    "vs_django_aggregate"
                ]
    for name, row in summary.get("loopback", {}).get("rows", {}).items():
        flat[f"loopback/{name}/vs_empty"] = row["vs_empty"]["median"]
        flat[f"loopback/{name}/vs_full_render"] = row["vs_full_render"]["median"]
    return flat


def _scaling_ratios(env: dict[str, Any]) -> list[tuple[str, float]]:
    """1M (or the largest size) against 1k: total request time and validator cost."""
    steady = env["steady"]
    sizes = sorted({int(name.split("/")[0]) for name in steady})
    if len(sizes) < 2:
        return []
    small, large = sizes[0], sizes[-1]
    ratios = []
    for part in ("whole", "subset"):
        for way in ("ours", "django", "depends_on"):
            a, b = steady.get(f"{small}/{part}/{way}"), steady.get(f"{large}/{part}/{way}")
            if a is None or b is None:
                continue
            ratios.append(
                (
                    f"{large}/{part}/{way}/request_time_vs_{small}",
                    b["us_per_request"] / a["us_per_request"],
                )
            )
            ratios.append(
                (
                    f"{large}/{part}/{way}/validator_cost_vs_{small}",
                    b["validator_us"] / max(a["validator_us"], 0.1),
                )
            )
    return ratios


# --- targets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One configuration checked against one target."""

    target: str
    subject: str
    measured: float
    bound: float
    met: bool


def _margin(check: Check) -> float:
    """How far a check is inside its bound (negative: missed)."""
    if check.target in _UPPER_BOUNDS:
        return check.bound - check.measured
    return check.measured - check.bound


def evaluate_targets(summary: dict[str, Any]) -> list[Check]:
    """Every check of every target that this run measured."""
    checks: list[Check] = []
    main = summary["main"]

    def ours_rows(env_name: str, stores: set[str], path: str) -> list[tuple[str, dict[str, Any]]]:
        rows = main.get(env_name, {}).get("rows", {})
        return [
            (name, row)
            for name, row in rows.items()
            if WAYS[row["way"]].ours and row["store"] in stores and row["path"] == path
        ]

    checks += [
        _at_least("warm-304-single-process", f"sqlite/persistent/{name}", row, 0.85)
        for name, row in ours_rows("sqlite/persistent", {"locmem"}, "304")
    ]
    checks += [
        _at_least("warm-304-redis-in-process", f"{env_name}/{name}", row, 0.6)
        for env_name in main
        if env_name.endswith("/persistent")
        for name, row in ours_rows(env_name, {"redis", "redis+locmem"}, "304")
    ]
    for name, row in summary.get("loopback", {}).get("rows", {}).items():
        config = _config_of(name)
        if WAYS[config.way].ours and config.store in {"redis", "redis+locmem"}:
            checks.append(_at_least("warm-304-redis-loopback", f"loopback/{name}", row, 0.8))
    for env_name, env in summary["scaling"].items():
        for label, value in _scaling_ratios(env):
            if "/ours/" in label and "validator_cost" in label:
                checks.append(
                    Check("scaling-flat", f"{env_name}/{label}", value, 1.2, value <= 1.2)
                )
    checks += _rule_checks(main, ours_rows)
    for env_name, env in main.items():
        for name, row in env["rows"].items():
            # The miss path renders the page; a way no rule matches renders the empty view.
            if WAYS[row["way"]].ours and WAYS[row["way"]].conditional and row["path"] == "200":
                checks.append(
                    _within_noise("miss-path", f"{env_name}/{name}", row["vs_full_render"])
                )
        for name, row in env["rows"].items():
            if "vs_django_condition" in row:
                value = row["vs_django_condition"]["median"]
                checks.append(
                    Check("vs-django-condition", f"{env_name}/{name}", value, 10, value >= 10)
                )
                value = row["vs_django_middleware"]["median"]
                checks.append(
                    Check("vs-django-middleware", f"{env_name}/{name}", value, 100, value >= 100)
                )
    return checks


def _within_noise(target: str, subject: str, ratio: dict[str, float]) -> Check:
    """At least 1 (as fast), give or take the ratio's own spread (and 3 % at the least)."""
    bound = 1 - max(0.03, ratio["q3"] - ratio["q1"])
    return Check(target, subject, ratio["median"], bound, ratio["median"] >= bound)


def _at_least(target: str, subject: str, row: dict[str, Any], floor: float) -> Check:
    """Throughput relative to the empty view, against a lower bound."""
    value = row["vs_empty"]["median"]
    return Check(target, subject, value, floor, value >= floor)


def _rule_checks(main: dict[str, Any], ours_rows: Any) -> list[Check]:
    """Issue 12's targets: the rule ways' warm 304s, the middleware's cost, the index."""
    checks = [
        _at_least("rule-warm-304-single-process", f"sqlite/persistent/{name}", row, 0.95)
        for name, row in ours_rows("sqlite/persistent", {"locmem"}, "304")
        if WAYS[row["way"]].through_rules
    ]
    checks += [
        _at_least("rule-warm-304-redis-in-process", f"{env_name}/{name}", row, 0.8)
        for env_name in main
        if env_name.endswith("/persistent")
        for name, row in ours_rows(env_name, {"redis", "redis+locmem"}, "304")
        if WAYS[row["way"]].through_rules
    ]
    for env_name, env in main.items():
        for name, row in env["rows"].items():
            way = WAYS[row["way"]]
            subject = f"{env_name}/{name}"
            if way.through_rules and not way.conditional:
                # The empty view through the middleware against the empty view alone.
                checks.append(_at_least("no-match-overhead", subject, row, 0.97))
            if "vs_fewer_rules" in row:
                # 1,000 rules against 10, round by round.
                checks.append(_within_noise("rules-indexed", subject, row["vs_fewer_rules"]))
    return checks


# --- metadata ----------------------------------------------------------------------------


def _command_output(command: list[str]) -> str:
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=10, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (completed.stdout or completed.stderr).strip()


def run_metadata(options: Options) -> dict[str, Any]:
    """What the run was: command, versions, machine, load."""
    import django

    commit = _command_output(["git", "rev-parse", "--short", "HEAD"])
    dirty = bool(_command_output(["git", "status", "--porcelain", "--untracked-files=no"]))
    return {
        "command": " ".join(["python -m benchmarks", *options.argv]),
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git": f"{commit}{'+dirty' if dirty else ''}",
        "python": platform.python_version(),
        "django": django.get_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_before": list(os.getloadavg()),
        "quick": options.quick,
        "rounds": options.rounds,
        "batch_seconds": options.batch_seconds,
        "databases": options.databases,
        "stores": options.stores,
        "conn_max_age": options.conn_max_ages,
        "wrk": _command_output(["wrk", "--version"]).splitlines()[0]
        if shutil.which("wrk")
        else None,
    }


# --- text --------------------------------------------------------------------------------


def _store_label(store: str | None) -> str:
    return store or "-"


def render_text(
    summary: dict[str, Any],
    checks: list[Check],
    meta: dict[str, Any],
    profile: dict[str, Any] | None = None,
) -> str:
    """The table printed at the end of the run."""
    lines = [
        "django-conditional benchmark",
        f"  {meta['command']}  (git {meta['git']}; Python {meta['python']}, "
        f"Django {meta['django']}; {meta['cpus']} CPUs)",
        f"  load average before {', '.join(f'{x:.2f}' for x in meta['load_average_before'])}; "
        f"after {', '.join(f'{x:.2f}' for x in meta.get('load_average_after', []))}; "
        f"{meta.get('duration_seconds', 0):.0f} s",
        "",
        "Throughput relative to the empty view (x empty) and to the full render (x full):",
        "median over rounds of the ratio within each round [interquartile range].",
        "Stores: " + "; ".join(f"{s.name} = {s.description}" for s in STORES.values()) + ".",
    ]
    for env_name, env in summary["main"].items():
        lines += [
            "",
            f"== {env['label']} ({env_name}), in process, {env['rounds']} rounds ==",
            f"{'configuration':<42} {'store':<13} {'path':>4} {'us/req':>9} {'req/s':>8} "
            f"{'x empty':>22} {'x full':>22} {'SQL':>4} {'conn':>4}",
        ]
        order = [c.name for c in main_configs(list(STORES))]
        for name in sorted(env["rows"], key=lambda n: order.index(n) if n in order else 99):
            row = env["rows"][name]
            lines.append(
                f"{WAYS[row['way']].label:<42} {_store_label(row['store']):<13} {row['path']:>4} "
                f"{row['us_per_request']:>9.1f} {row['requests_per_second']:>8,.0f} "
                f"{_fmt_spread(Spread(**row['vs_empty'])):>22} "
                f"{_fmt_spread(Spread(**row['vs_full_render'])):>22} "
                f"{row['queries_per_request']:>4g} {row['connections_per_request']:>4g}"
            )
    for env_name, env in summary["scaling"].items():
        lines += [
            "",
            f"== Scaling, {env['label']} ({env_name}), stamps in local memory ==",
            f"steady state: a warm revalidation (304), microseconds per request (empty view "
            f"{env['empty_us']:.1f}); validator = request - empty view; after a write: the "
            "first revalidation after a write to the table (ours recomputes its fingerprint)",
            f"{'rows':>9} {'set':<7} {'ours 304':>9} {'validator':>9} {'depends_on':>10} "
            f"{'Django agg':>10} {'ours after write':>16} {'/ Django agg':>12}",
            f"{'':>9} {'':<7} {'us':>9} {'us':>9} {'us':>10} {'us':>10} {'':>16}",
        ]

        def cell(row: dict[str, Any] | None, key: str, width: int) -> str:
            return f"{row[key]:>{width}.1f}" if row else f"{'-':>{width}}"

        sizes = sorted({int(n.split("/")[0]) for n in env["steady"]})
        for size in sizes:
            for part in ("whole", "subset"):
                ours = env["steady"].get(f"{size}/{part}/ours")
                after = env["after_write"].get(f"{size}/{part}/ours")
                ratio = after.get("vs_django_aggregate") if after else None
                lines.append(
                    f"{size:>9,} {part:<7} {cell(ours, 'us_per_request', 9)} "
                    f"{cell(ours, 'validator_us', 9)} "
                    f"{cell(env['steady'].get(f'{size}/{part}/depends_on'), 'us_per_request', 10)} "
                    f"{cell(env['steady'].get(f'{size}/{part}/django'), 'us_per_request', 10)} "
                    f"{cell(after, 'ms_first_request', 13)} ms "
                    f"{f'{ratio:.2f}' if ratio else '-':>12}"
                )
        for label, value in _scaling_ratios(env):
            lines.append(f"  {label}: {value:.2f}")
    loopback = summary.get("loopback")
    if loopback:
        lines += [
            "",
            f"== Over loopback: gunicorn ({loopback['workers']} {loopback['worker_class']} "
            f"workers) on {loopback['database']}, wrk with {loopback['connections']} connections, "
            f"{loopback['seconds_per_run']} s x {loopback['rounds']} rounds ==",
            f"{'configuration':<42} {'store':<13} {'path':>4} {'req/s':>8} {'x empty':>22} "
            f"{'x full':>22}",
        ]
        for name, row in loopback["rows"].items():
            config = _config_of(name)
            lines.append(
                f"{WAYS[config.way].label:<42} {_store_label(config.store):<13} "
                f"{'304' if config.revalidation else '200':>4} {row['requests_per_second']:>8,.0f} "
                f"{_fmt_spread(Spread(**row['vs_empty'])):>22} "
                f"{_fmt_spread(Spread(**row['vs_full_render'])):>22}"
            )
    if profile:
        lines += [
            "",
            f"== Profile of warm requests ({profile.get('environment', '?')}; in full in "
            "profile.txt): inclusive share of the request ==",
        ]
        boring = ("__call__ (django/core/handlers/wsgi.py)", "get_response (", "inner (")
        for name, config in profile["configs"].items():
            shares = [
                f"{share:.0%} {function.split(' (')[0]}"
                for function, share in config["inclusive_shares"].items()
                if "django_conditional/" in function and not function.startswith(boring)
            ][:8]
            lines.append(
                f"  {name}: {config['us_per_request_profiled']:.0f} us under the profiler, "
                f"{config['querysets_built_per_request']:g} querysets built; "
                + (", ".join(shares) or "no package code")
            )
        lines.append("  parts timed alone, us per call:")
        lines += [f"    {value:8.2f}  {label}" for label, value in profile["micro_us"].items()]
        lines += [f"    not measured: {k}: {v}" for k, v in profile.get("micro_errors", {}).items()]
    lines += ["", "== Targets (issues 4 and 12) =="]
    for target, description in TARGETS.items():
        relevant = [c for c in checks if c.target == target]
        if not relevant:
            lines.append(f"  [not measured] {description}")
            continue
        met = sum(c.met for c in relevant)
        worst = min(relevant, key=_margin)
        status = "MET" if met == len(relevant) else "MISSED"
        lines.append(
            f"  [{status}] {description}: {met} of {len(relevant)} configurations; "
            f"worst {worst.subject} = {_fmt(worst.measured)}"
        )
    return "\n".join(lines)


def render_markdown(summary: dict[str, Any], checks: list[Check]) -> str:
    """The compact tables for the README: the 304 path, the 200 path, loopback, scaling."""
    environments = list(summary["main"])
    if not environments:
        return ""
    labels = [summary["main"][e]["label"] for e in environments]
    lines = [
        "Revalidation (304), throughput relative to the empty view, in process:",
        "",
        "| Way | Store | " + " | ".join(labels) + " | SQL |",
        "| --- | --- |" + " ---: |" * len(environments) + " ---: |",
    ]
    first = summary["main"][environments[0]]["rows"]
    order = [c.name for c in main_configs(list(STORES))]
    names = sorted(first, key=lambda n: order.index(n) if n in order else 99)
    for name in (n for n in names if n.endswith("/304")):
        row = first[name]
        cells = [
            _fmt(summary["main"][env]["rows"][name]["vs_empty"]["median"]) for env in environments
        ]
        lines.append(
            f"| {WAYS[row['way']].label} | {_store_label(row['store'])} | "
            + " | ".join(cells)
            + f" | {row['queries_per_request']:g} |"
        )
    misses = [
        row["vs_full_render"]["median"]
        for env in environments
        for row in summary["main"][env]["rows"].values()
        if WAYS[row["way"]].ours and row["path"] == "200"
    ]
    if misses:
        lines += [
            "",
            f"Miss (200, no If-None-Match): ours at {min(misses):.2f} to {max(misses):.2f} "
            "of the full render's throughput in every configuration above.",
        ]
    loopback = summary.get("loopback")
    if loopback:
        lines += [
            "",
            f"Over loopback (gunicorn, {loopback['workers']} {loopback['worker_class']} workers, "
            f"{loopback['database']}; wrk, {loopback['connections']} connections), "
            "throughput relative to the empty view:",
            "",
            "| Configuration | Requests/s | x empty |",
            "| --- | ---: | ---: |",
        ]
        for name, row in loopback["rows"].items():
            lines.append(
                f"| {name} | {row['requests_per_second']:,.0f} | "
                f"{_fmt(row['vs_empty']['median'])} |"
            )
    for env in summary["scaling"].values():
        steady = env["steady"]
        sizes = sorted({int(n.split("/")[0]) for n in steady})
        if len(sizes) < 2:
            continue
        small, large = sizes[0], sizes[-1]
        lines += [
            "",
            f"Scaling ({env['label']}, microseconds per warm 304; the first request after a "
            "write in milliseconds):",
            "",
            f"| Set | ours {small:,} | ours {large:,} | Django aggregate {small:,} | "
            f"Django aggregate {large:,} | ours after a write, {large:,} |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for part in ("whole", "subset"):
            after = env["after_write"].get(f"{large}/{part}/ours", {})
            lines.append(
                f"| {'whole table' if part == 'whole' else '1% subset'} | "
                f"{steady[f'{small}/{part}/ours']['us_per_request']:.0f} | "
                f"{steady[f'{large}/{part}/ours']['us_per_request']:.0f} | "
                f"{steady[f'{small}/{part}/django']['us_per_request']:.0f} | "
                f"{steady[f'{large}/{part}/django']['us_per_request']:,.0f} | "
                f"{after.get('ms_first_request', float('nan')):,.1f} ms |"
            )
    lines += ["", "Targets:", ""]
    for target, description in TARGETS.items():
        relevant = [c for c in checks if c.target == target]
        if relevant:
            met = sum(c.met for c in relevant)
            lines.append(f"- {description}: met by {met} of {len(relevant)} configurations.")
    return "\n".join(lines)


# --- chart -------------------------------------------------------------------------------


def write_chart(summary: dict[str, Any], path: Path) -> None:
    """The main table as a PNG: 304s against the empty view, 200s against the full render."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    environments = list(summary["main"])
    first = summary["main"][environments[0]]["rows"]
    order = [c.name for c in main_configs(list(STORES))]
    names = sorted(first, key=lambda n: order.index(n) if n in order else 99)
    revalidations = [n for n in names if n.endswith("/304")]
    misses = [n for n in names if n.endswith("/200") and not n.startswith(("empty", "full"))]
    loopback = summary.get("loopback", {}).get("rows", {})
    panels = [
        (
            "Revalidation (304): throughput / empty view (log scale)",
            revalidations,
            "vs_empty",
            True,
        ),
        ("Miss (200): throughput / full render", misses, "vs_full_render", False),
    ]
    figure, axes = plt.subplots(
        1, 3 if loopback else 2, figsize=(22 if loopback else 16, 9), constrained_layout=True
    )
    colors = ["#1f77b4", "#aec7e8", "#d62728", "#ff9896"]
    for axis, (title, rows, key, log) in zip(axes, panels, strict=False):
        height = 0.8 / len(environments)
        for index, env in enumerate(environments):
            ratios = [summary["main"][env]["rows"][n][key] for n in rows]
            values = [ratio["median"] for ratio in ratios]
            # The interquartile range over rounds: the run's noise.
            errors = [
                [r["median"] - r["q1"] for r in ratios],
                [r["q3"] - r["median"] for r in ratios],
            ]
            positions = [i + index * height for i in range(len(rows))]
            axis.barh(
                positions,
                values,
                height=height,
                xerr=errors,
                error_kw={"elinewidth": 0.6, "capsize": 1.5, "ecolor": "#555555"},
                color=colors[index % len(colors)],
                label=summary["main"][env]["label"],
            )
        axis.set_yticks([i + 0.4 - height / 2 for i in range(len(rows))])
        axis.set_yticklabels([n.rsplit("/", 1)[0] for n in rows], fontsize=8)
        axis.invert_yaxis()
        axis.set_title(title, fontsize=10)
        if log:
            axis.set_xscale("log")
            axis.axvline(0.85, color="green", linestyle="--", linewidth=1, label="target 0.85")
            axis.axvline(
                0.6, color="orange", linestyle="--", linewidth=1, label="target 0.6 (Redis)"
            )
        else:
            axis.axvline(1.0, color="black", linewidth=1)
            highest = max(
                summary["main"][env]["rows"][n][key]["q3"] for env in environments for n in rows
            )
            axis.set_xlim(0.5, max(1.2, highest * 1.05))
        axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.03), ncol=3)
        axis.grid(axis="x", alpha=0.3)
    if loopback:
        axis = axes[2]
        names = list(loopback)
        ratios = [loopback[n]["vs_empty"] for n in names]
        axis.barh(
            range(len(names)),
            [r["median"] for r in ratios],
            xerr=[[r["median"] - r["q1"] for r in ratios], [r["q3"] - r["median"] for r in ratios]],
            error_kw={"elinewidth": 0.6, "capsize": 1.5, "ecolor": "#555555"},
            color="#2ca02c",
        )
        axis.set_yticks(range(len(names)))
        axis.set_yticklabels(names, fontsize=8)
        axis.invert_yaxis()
        axis.set_xscale("log")
        axis.axvline(0.8, color="orange", linestyle="--", linewidth=1, label="target 0.8 (Redis)")
        axis.set_title(
            f"Over loopback (gunicorn, {summary['loopback']['database']}): throughput / empty view",
            fontsize=10,
        )
        axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.03))
        axis.grid(axis="x", alpha=0.3)
    figure.suptitle("django-conditional: 50 cards + 1,000 links over 10,000 rows", fontsize=12)
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --- everything --------------------------------------------------------------------------


def write_reports(results: dict[str, Any], options: Options) -> str:
    """Write results.json, results.txt, summary.md and chart.png; return the text."""
    summary = summarize(results)
    checks = evaluate_targets(summary)
    text = render_text(summary, checks, results["meta"], results.get("profile"))
    document = {
        "meta": results["meta"],
        "ratios": flat_ratios(summary),
        "queries_per_request": {
            f"{env_name}/{name}": row["queries_per_request"]
            for env_name, env in summary["main"].items()
            for name, row in env["rows"].items()
        },
        "summary": summary,
        "targets": [asdict(check) for check in checks],
        "build_seconds": results.get("build_seconds"),
        "profile": results.get("profile"),
        "raw": {key: results.get(key) for key in ("main", "scaling", "loopback")},
    }
    output = options.output
    (output / "results.json").write_text(json.dumps(document, indent=1, sort_keys=False))
    (output / "results.txt").write_text(text + "\n")
    (output / "summary.md").write_text(render_markdown(summary, checks) + "\n")
    if options.chart and summary["main"]:
        write_chart(summary, output / "chart.png")
    return text
