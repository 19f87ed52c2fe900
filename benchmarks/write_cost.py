"""What a write costs with the package: ``save()`` per stamp store, two versions side by side.

    python -m benchmarks.write_cost [--compare OTHER_CHECKOUT] [--stores db,locmem,redis,...]

Each (checkout, store) pair runs in a process of its own with its own SQLite file;
the runner interleaves them round by round (in a shuffled order), so that the
machine's noise falls on all alike, and prints each pair's median time per write
and the ratio of this checkout's to the other's. ``--compare`` names another
checkout of the project (``git worktree add /tmp/before <commit>``): its
``django_conditional`` and ``benchmarks`` are imported instead of these.

Three writes per round: ``save()`` in autocommit, ``save()`` inside
``transaction.atomic()``, and ``guarded``: the same ``save()`` as the view of an
``If-Match`` request runs it, with its row claimed first (``guarded_writes.run_claimed``:
the compare-and-swap, then the version read back); compare it with ``atomic``. A
checkout without ``guarded_writes`` measures the first two. Redis stores use
database 7 of ``BENCH_REDIS_URL``'s server.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Stores by name: (BENCH_STORE, stamp tracking).
STORES = {
    "db": ("db", True),
    "locmem": ("locmem", True),
    "redis": ("redis+locmem", False),
    "redis-tracked": ("redis+locmem", True),
}
KINDS = ("autocommit", "atomic", "guarded")


def _child(root: str, store: str, writes: int) -> None:
    """Serve ``round`` lines on stdin with one JSON line of medians (microseconds) each."""
    sys.path.insert(0, root)
    # An editable install's finder would import this checkout's package whatever sys.path says.
    sys.meta_path[:] = [f for f in sys.meta_path if "Editable" not in type(f).__name__]
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    bench_store, tracking = STORES[store]
    os.environ["BENCH_STORE"] = bench_store
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import transaction

    import django_conditional

    settings.CONDITIONAL_STAMP_TRACKING = tracking
    call_command("migrate", run_syncdb=True, verbosity=0)
    from benchmarks.bench.models import Article, Author

    author = Author.objects.create(name="a")
    article = Article.objects.create(
        title="t", slug="t", summary="s", published_at=django.utils.timezone.now(), author=author
    )
    print(json.dumps({"package": str(Path(django_conditional.__file__).parent)}), flush=True)

    def autocommit() -> None:
        article.save()

    def atomic() -> None:
        with transaction.atomic():
            article.save()

    writes_of_kind: list[tuple[str, Callable[[], None]]] = [
        ("autocommit", autocommit),
        ("atomic", atomic),
    ]
    try:
        from django.http import HttpResponse

        from django_conditional.guarded_writes import SeenRow, run_claimed
    except ImportError:  # a checkout from before issue 13
        pass
    else:

        def view() -> HttpResponse:
            article.save()
            return HttpResponse()

        def guarded() -> None:
            if run_claimed(SeenRow.of(article), view) is None:
                raise RuntimeError("the claim failed: the row moved under the benchmark")

        writes_of_kind.append(("guarded", guarded))

    for _line in sys.stdin:
        result = {}
        for kind, write in writes_of_kind:
            samples = []
            for _ in range(writes):
                began = time.perf_counter()
                write()
                samples.append(time.perf_counter() - began)
            result[kind] = statistics.median(samples) * 1e6
        print(json.dumps(result), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--compare", type=Path, help="another checkout to measure alongside")
    parser.add_argument("--stores", default=",".join(STORES), help="comma-separated")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writes", type=int, default=200, help="writes of each kind per round")
    parser.add_argument("--child", nargs=2, metavar=("ROOT", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], args.child[1], args.writes)
        return 0
    roots = {"this": ROOT} | ({"other": args.compare.resolve()} if args.compare else {})
    stores = [store.strip() for store in args.stores.split(",") if store.strip()]
    unknown = sorted(set(stores) - set(STORES))
    if unknown:
        parser.error(f"unknown store(s) {', '.join(unknown)}; expected some of {', '.join(STORES)}")
    workers: dict[tuple[str, str], subprocess.Popen[str]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for (label, root), store in ((pair, s) for pair in roots.items() for s in stores):
            env = {
                **os.environ,
                "BENCH_SQLITE_PATH": str(Path(scratch) / f"{label}-{store}.sqlite3"),
                "BENCH_KEY_PREFIX": f"writecost-{label}-{store}-{os.getpid()}",
                "BENCH_REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7"),
            }
            command = [sys.executable, __file__, "--writes", str(args.writes)]
            workers[label, store] = subprocess.Popen(
                [*command, "--child", str(root), store],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
                cwd=root,
            )
        for (label, store), worker in workers.items():
            started = json.loads(_line(worker))
            print(f"{label} {store}: django_conditional from {started['package']}")
        samples: dict[tuple[str, str, str], list[float]] = {}
        order = list(workers)
        shuffler = random.Random(20261207)
        for _ in range(args.rounds):
            shuffler.shuffle(order)
            for key in order:
                worker = workers[key]
                assert worker.stdin is not None
                worker.stdin.write("round\n")
                worker.stdin.flush()
                for kind, micros in json.loads(_line(worker)).items():
                    samples.setdefault((*key, kind), []).append(micros)
        for worker in workers.values():
            assert worker.stdin is not None
            worker.stdin.close()
            worker.wait()
    _report(samples, stores, compare=args.compare is not None)
    return 0


def _line(worker: subprocess.Popen[str]) -> str:
    assert worker.stdout is not None
    line = worker.stdout.readline()
    if not line:
        raise SystemExit(f"a write-cost worker exited early (code {worker.wait()})")
    return line


def _report(
    samples: dict[tuple[str, str, str], list[float]], stores: list[str], *, compare: bool
) -> None:
    print(
        f"\n{'store':<14} {'write':<11} {'this µs':>9}"
        + (f" {'other µs':>9} {'ratio':>6}" if compare else "")
    )
    for store in stores:
        for kind in KINDS:
            if ("this", store, kind) not in samples:
                continue
            this = statistics.median(samples["this", store, kind])
            line = f"{store:<14} {kind:<11} {this:9.0f}"
            if compare and ("other", store, kind) in samples:
                other = statistics.median(samples["other", store, kind])
                line += f" {other:9.0f} {this / other:6.2f}"
            if kind == "guarded":
                # The same save, in a transaction, without the claim: in this run, side by side.
                line += (
                    f"   {this / statistics.median(samples['this', store, 'atomic']):.2f} x atomic"
                )
            print(line)


if __name__ == "__main__":
    raise SystemExit(main())
