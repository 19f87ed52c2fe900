"""One benchmark environment (a database and a connection policy) in its own process.

The runner starts one worker per environment and sends it JSON commands on
stdin, one per line (build, prepare, round, ...); each answer is one JSON
line on the original stdout. Only one worker measures at a time: the runner
interleaves them round by round.

The rule ways need a number of enabled rules (10 or 1,000) in the database,
which the workers share: before each batch of a rule way, untimed, the
worker sets that number if it differs, makes sure its process holds those
rules, and sends one request, refetching the page's tag when a write to the
rule table (its own, or another worker's) changed it.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, TextIO

os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"

import django

django.setup()

from django.db.models import F  # noqa: E402

from benchmarks import data  # noqa: E402
from benchmarks.bench.models import SCALE_MODELS  # noqa: E402
from benchmarks.bench.views import rule_page_runs  # noqa: E402
from benchmarks.configs import (  # noqa: E402
    MANY_RULES,
    WAYS,
    ScaleConfig,
    main_configs,
    scale_configs,
)
from benchmarks.measure import Driver, count_queries, use_store  # noqa: E402
from django_conditional.rules import current_rules  # noqa: E402

__all__ = ["Prepared", "Worker", "main"]

# The row every scaling write changes: id 100 is in the 1% subset (grp = id % 100 = 0).
_WRITTEN_ROW = 100
# Where ``ours`` is measured in the scaling part: stamps in this process.
SCALE_STORE = "locmem"


@dataclass
class Prepared:
    """A configuration ready to measure: its request, batch size and query count."""

    name: str
    path: str
    store: str | None
    expected_status: int
    environ: dict[str, Any]
    # Enabled rules it is measured with, through ConditionalRulesMiddleware; 0: no middleware.
    rules: int = 0
    count: int = 1
    per_request: float = 0.0
    queries: float = 0.0
    connections: float = 0.0
    # How many times the rule way's view ran per request (None: not a rule way's view).
    view_runs: float | None = None

    def summary(self) -> dict[str, Any]:
        """What the runner needs to know."""
        summary: dict[str, Any] = {
            "name": self.name,
            "count": self.count,
            "calibration_us": self.per_request * 1e6,
            "queries": self.queries,
            "connections": self.connections,
            "status": self.expected_status,
            "rules": self.rules,
        }
        if self.view_runs is not None:
            summary["view_runs"] = self.view_runs
        return summary


def _freeze_heap() -> None:
    """Move the warm heap out of the collector's sight (``gc.freeze``).

    Each batch's ``gc.collect()`` is then quick, and what the collector does
    during a batch is caused by the requests measured.
    """
    gc.collect()
    gc.freeze()


class Worker:
    """Commands of one worker process."""

    def __init__(self) -> None:
        self.driver = Driver()
        self.store: str | None = None
        self.prepared: dict[str, Prepared] = {}
        self.scaled: dict[str, Prepared] = {}
        self.writes = 0
        self.rule_switches = 0

    # --- helpers ---------------------------------------------------------------

    def _use(self, store: str | None) -> None:
        if store is not None and store != self.store:
            use_store(store)
            self.store = store

    def _etag(self, path: str, *, rules: bool = False) -> str:
        response = self.driver.request(Driver.environ(path), rules=rules)
        etag = response.headers.get("ETag")
        if response.status_code != 200 or not etag:
            raise RuntimeError(f"GET {path} gave {response.status_code} with ETag {etag!r}.")
        return etag

    def _wrong_answer(
        self, prepared: Prepared, response: Any, requests: int | None = None
    ) -> RuntimeError:
        """The error for an unexpected status, with what tells a moved tag from a lost one."""
        sent = prepared.environ.get("HTTP_IF_NONE_MATCH")
        after = f" after {requests} warm requests" if requests is not None else ""
        return RuntimeError(
            f"{prepared.name}: {prepared.path} answered {response.status_code}{after}, "
            f"expected {prepared.expected_status}; sent If-None-Match {sent!r}, "
            f"got ETag {response.headers.get('ETag')!r}, "
            f"Cache-Control {response.headers.get('Cache-Control')!r}, store {self.store}."
        )

    def _use_rules(self, count: int) -> None:
        """Have ``count`` rules enabled in the database and loaded in this process."""
        if data.enabled_rules() != count:
            data.enable_rules(count)
            self.rule_switches += 1
        if len(current_rules()) != count:
            # Stamps that moved in another store, or not yet re-read (the db store).
            current_rules(force=True)
        loaded = len(current_rules())
        if loaded != count:
            raise RuntimeError(f"{count} rules enabled, but this process loaded {loaded}.")

    def ready(self, prepared: Prepared) -> None:
        """Untimed: the configuration's store and rules in place, its request answered right.

        After a change of store, one request (the first under it fills caches).
        Before a rule way, always: another worker may have changed the rules
        and, with the db store, the stamps its tag is derived from.
        """
        switched = prepared.store is not None and prepared.store != self.store
        self._use(prepared.store)
        if not prepared.rules:
            if switched:
                self.driver.request(prepared.environ)
            return
        self._use_rules(prepared.rules)
        response = self.driver.request(prepared.environ, rules=True)
        if response.status_code != prepared.expected_status and prepared.expected_status == 304:
            # The tag moved with the rule table's stamp: revalidate with the current one.
            prepared.environ = Driver.environ(prepared.path, self._etag(prepared.path, rules=True))
            response = self.driver.request(prepared.environ, rules=True)
        if response.status_code != prepared.expected_status:
            raise self._wrong_answer(prepared, response)

    def _prepare(self, prepared: Prepared, warm_seconds: float, batch_seconds: float) -> None:
        """Warm up, count queries, and size batches to about ``batch_seconds``."""
        self._use(prepared.store)
        through_rules = prepared.rules > 0
        deadline = time.perf_counter() + warm_seconds
        timings: list[float] = []
        while len(timings) < 2 or time.perf_counter() < deadline:
            start = time.perf_counter()
            response = self.driver.request(prepared.environ, rules=through_rules)
            timings.append(time.perf_counter() - start)
            if response.status_code != prepared.expected_status:
                raise self._wrong_answer(prepared, response, len(timings))
        # Counted request by request, the median reported: the typical request. Work
        # done once per many requests (the rules' counters written every 500, the db
        # store's check of the rule stamps every second) shows in the time, not here.
        queries, connections, runs = [], [], []
        for _ in range(3):
            before = rule_page_runs()
            with count_queries() as counted:
                self.driver.request(prepared.environ, rules=through_rules)
            queries.append(counted.queries)
            connections.append(counted.connections)
            runs.append(rule_page_runs() - before)
        prepared.queries = statistics.median(queries)
        prepared.connections = statistics.median(connections)
        if prepared.path == WAYS["rule"].path:
            prepared.view_runs = statistics.median(runs)
        # The warm requests' median (the first ones filled caches).
        prepared.per_request = statistics.median(timings[len(timings) // 2 :])
        prepared.count = max(1, round(batch_seconds / prepared.per_request))

    # --- commands --------------------------------------------------------------

    def build(self, sizes: list[int]) -> dict[str, float]:
        """Recreate the database and its data (1,000 rules: ``prepare`` enables some)."""
        return data.build(tuple(sizes), rules=MANY_RULES)

    def prepare(
        self, stores: list[str], warm_seconds: float, batch_seconds: float
    ) -> list[dict[str, Any]]:
        """Prepare every main configuration."""
        for config in main_configs(stores):
            way = WAYS[config.way]
            self._use(config.store)
            if way.rules:
                self._use_rules(way.rules)
            path = way.path
            etag = self._etag(path, rules=way.through_rules) if config.revalidation else None
            prepared = Prepared(
                config.name,
                path,
                config.store,
                config.expected_status,
                Driver.environ(path, etag),
                rules=way.rules,
            )
            self._prepare(prepared, warm_seconds, batch_seconds)
            self.prepared[config.name] = prepared
        _freeze_heap()
        return [prepared.summary() for prepared in self.prepared.values()]

    def round(self, order: list[str]) -> dict[str, float]:
        """One batch of each named configuration, in order: seconds per request."""
        results: dict[str, float] = {}
        for name in order:
            prepared = self.prepared[name]
            self.ready(prepared)
            results[name] = self.driver.batch(
                prepared.environ,
                prepared.count,
                prepared.expected_status,
                rules=prepared.rules > 0,
            )
        return results

    def scale_prepare(
        self, sizes: list[int], warm_seconds: float, batch_seconds: float
    ) -> list[dict[str, Any]]:
        """Prepare the steady-state scaling configurations (stamps in this process)."""
        self._use(SCALE_STORE)
        for config in scale_configs(tuple(sizes)):
            prepared = Prepared(
                config.name,
                config.path,
                SCALE_STORE,
                304,
                Driver.environ(config.path, self._etag(config.path)),
            )
            self._prepare(prepared, warm_seconds, batch_seconds)
            self.scaled[config.name] = prepared
        _freeze_heap()
        return [prepared.summary() for prepared in self.scaled.values()]

    def _write(self, size: int) -> None:
        self.writes += 1
        SCALE_MODELS[size].objects.filter(pk=_WRITTEN_ROW).update(title=F("title"), grp=0)

    def after_write(self, size: int, subset: bool) -> dict[str, Any]:
        """Write one row, then time the first revalidation of ``ours`` (a recomputation)."""
        self._use(SCALE_STORE)
        name = ScaleConfig(size, subset, "ours").name
        prepared = self.scaled[name]
        self._write(size)
        with count_queries() as counted:
            start = time.perf_counter()
            response = self.driver.request(prepared.environ)
            elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise RuntimeError(
                f"{name}: the first request after a write gave "
                f"{response.status_code}, expected 200 (a new tag)."
            )
        # Every validator over this table changed: refresh the tags the steady state sends.
        for way in ("ours", "django", "depends_on"):
            for part in (False, True):
                other = self.scaled.get(ScaleConfig(size, part, way).name)
                if other is not None:
                    other.environ = Driver.environ(other.path, self._etag(other.path))
        return {"name": name, "seconds": elapsed, "queries": counted.queries}

    def scale_round(self, order: list[str]) -> dict[str, float]:
        """One steady-state batch of each named scaling configuration."""
        self._use(SCALE_STORE)
        results: dict[str, float] = {}
        for name in order:
            # The empty view of the main table, measured among these as the floor.
            prepared = self.scaled.get(name) or self.prepared[name]
            self.driver.request(prepared.environ)
            results[name] = self.driver.batch(
                prepared.environ, prepared.count, prepared.expected_status
            )
        return results

    def profile(self, names: list[str], seconds: float, output: str) -> dict[str, Any]:
        """Profile warm configurations; see ``benchmarks.profiling``."""
        from benchmarks.profiling import profile_configs

        return profile_configs(self, names, seconds, output)


def main(stdin: TextIO = sys.stdin) -> None:
    """Serve commands until ``quit`` or end of input."""
    # Answers go to the real stdout; anything else printed goes to stderr.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr
    worker = Worker()
    for line in stdin:
        message = json.loads(line)
        command = message.pop("command")
        if command == "quit":
            break
        try:
            result = getattr(worker, command)(**message)
            answer: dict[str, Any] = {"ok": True, "result": result}
        except Exception:
            answer = {"ok": False, "error": traceback.format_exc()}
        channel.write(json.dumps(answer) + "\n")
    channel.close()


if __name__ == "__main__":
    main()
