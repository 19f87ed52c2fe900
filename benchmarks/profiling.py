"""Profile the warm 304 path, and time its parts one by one.

Two kinds of evidence for where a 304 spends its time: pyinstrument's
sampled call tree of many warm requests (each function's inclusive share of
the time spent in Django's WSGI handler), and the parts of the path timed
alone in a loop (a cache read, a stamp read, the keyed hashes, the
precondition evaluation), which show what each costs without a profiler's
overhead.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.cache import caches
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpResponseNotModified
from django.utils import translation

from benchmarks.measure import use_store

if TYPE_CHECKING:
    from pyinstrument.frame import Frame

    from benchmarks.worker import Worker

__all__ = ["inclusive_shares", "micro_timings", "profile_configs"]

_HANDLER = ("__call__", "django/core/handlers/wsgi.py")


def _identity(frame: Frame) -> tuple[str, str]:
    path = (frame.file_path or "").replace("\\", "/")
    for marker in ("site-packages/", "/work/main/", "lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return frame.function or "?", path


def inclusive_shares(root: Frame) -> dict[str, float]:
    """Each function's inclusive time as a share of the time inside the WSGI handler."""
    totals: dict[tuple[str, str], float] = {}
    handler_time = 0.0

    def walk(frame: Frame, ancestors: frozenset[tuple[str, str]], inside: bool) -> None:
        nonlocal handler_time
        identity = _identity(frame)
        is_handler = identity[0] == _HANDLER[0] and identity[1].endswith(_HANDLER[1])
        if is_handler and not inside:
            handler_time += frame.time
            inside = True
        if inside and identity not in ancestors and not frame.is_synthetic:
            totals[identity] = totals.get(identity, 0.0) + frame.time
        for child in frame.children:
            walk(child, ancestors | {identity}, inside)

    walk(root, frozenset(), False)
    if not handler_time:
        return {}
    return {
        f"{function} ({path})": total / handler_time
        for (function, path), total in sorted(totals.items(), key=lambda item: -item[1])
    }


def _querysets_per_request(
    worker: Worker, environ: dict[str, Any], requests: int = 20, *, rules: bool = False
) -> float:
    """How many ``QuerySet`` objects a request builds (clones included)."""
    from django.db.models import QuerySet

    built = 0
    original = QuerySet.__init__

    def counting(self: QuerySet[Any], *args: Any, **kwargs: Any) -> None:
        nonlocal built
        built += 1
        original(self, *args, **kwargs)

    QuerySet.__init__ = counting  # type: ignore[method-assign]
    try:
        for _ in range(requests):
            worker.driver.request(environ, rules=rules)
    finally:
        QuerySet.__init__ = original  # type: ignore[method-assign]
    return built / requests


def _time_call(function: Callable[[], object], seconds: float = 0.2) -> float:
    """Median microseconds per call over a few timed loops of ``function``."""
    function()
    count = 1
    while True:
        start = time.perf_counter()
        for _ in range(count):
            function()
        elapsed = time.perf_counter() - start
        if elapsed > seconds / 10 or count > 1_000_000:
            break
        count *= 4
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(count):
            function()
        samples.append((time.perf_counter() - start) / count)
    samples.sort()
    return samples[len(samples) // 2] * 1e6


def micro_timings(worker: Worker, stores: list[str]) -> tuple[dict[str, float], dict[str, str]]:
    """Microseconds per call of each part of the warm 304 path, timed alone.

    Some parts are private functions of the package: one that changed or
    disappeared is reported under errors, never silently left out.
    """
    from benchmarks.bench.views import newest_articles
    from django_conditional import derivation, engine, http, responses, validator_cache, validators
    from django_conditional.stamps import read_stamps

    timings: dict[str, float] = {}
    errors: dict[str, str] = {}

    def measure(label: str, function: Callable[[], object]) -> None:
        try:
            timings[label] = _time_call(function)
        except Exception as error:
            errors[label] = f"{type(error).__name__}: {error}"

    prepared = worker.prepared.get("ours-queryset/locmem/304") or next(
        p for p in worker.prepared.values() if p.expected_status == 304
    )
    request = WSGIRequest(dict(prepared.environ))
    measure(
        "empty view, whole request",
        lambda: worker.driver.request(worker.prepared["empty/200"].environ),
    )
    tables = ("bench_article", "bench_article#deleted", "bench_author")
    options = engine.ResponseOptions()
    identity = "benchmarks.bench.views.front_page"
    salts = engine.request_salts(request, public=True)
    key_parts = engine.variant_key(request, identity, salts)
    parts = ["salts", identity, *salts, *(item for table in tables for item in (table, 1))]
    validator = validators.Validator(etag=validators.keyed_tag(parts, weak=True))
    dated = validators.Validator(
        etag=validator.etag, last_modified=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    )
    etag_text = str(validator.etag)
    request.META["HTTP_IF_NONE_MATCH"] = etag_text
    measure("engine.request_salts", lambda: engine.request_salts(request, public=True))
    measure(
        "engine.variant_key (validated host, path, query)",
        lambda: engine.variant_key(request, identity, salts),
    )
    measure(
        "validator_cache.shared_key (keyed blake2b)",
        lambda: validator_cache.shared_key(key_parts),
    )
    measure("validators.keyed_tag", lambda: validators.keyed_tag(parts, weak=True))
    measure(
        "engine.answer_revalidation (If-None-Match == tag, build the 304)",
        lambda: engine.answer_revalidation(request, validator, options),
    )
    measure(
        "engine.answer_revalidation, validator with Last-Modified",
        lambda: engine.answer_revalidation(request, dated, options),
    )
    measure(
        "engine.evaluate (parse the fields, RFC 9110 13.2.2)",
        lambda: engine.evaluate(request, validator),
    )
    measure("responses.not_modified() (the 304 object)", responses.not_modified)
    measure("http.format_http_date (Last-Modified)", lambda: http.format_http_date(1_704_067_200))
    measure("request.get_host() (ALLOWED_HOSTS validation)", request.get_host)
    measure("translation.get_language()", translation.get_language)

    def bare_304() -> HttpResponseNotModified | None:
        # The floor of any 304: the tag compared, Django's own 304 class.
        if request.META.get("HTTP_IF_NONE_MATCH") != etag_text:
            return None
        response = HttpResponseNotModified()
        response.headers["ETag"] = etag_text
        return response

    measure("for comparison: If-None-Match == tag, then a plain 304 (Django's class)", bare_304)
    measure(
        "derivation.Derivation(...) (the dataclass)",
        lambda: derivation.Derivation(queryset=newest_articles, salts=salts),
    )
    measure("newest_articles(): building the page's queryset, not evaluated", newest_articles)
    for store in stores:
        use_store(store)
        worker.store = store
        arguments = derivation.Derivation(queryset=newest_articles, salts=(identity, *salts))
        try:
            derivation.derive(arguments, cache_key=key_parts)  # stores the entry
        except Exception as error:
            errors[f"derivation.derive [{store}]"] = f"{type(error).__name__}: {error}"
            continue
        measure(
            f"derivation.derive, cache hit [{store}]",
            partial(derivation.derive, arguments, cache_key=key_parts),
        )
        measure(
            f"validator_cache.lookup, kept in this process [{store}]",
            partial(validator_cache.lookup, key_parts, shared=False),
        )
        measure(f"stamps.read_stamps, 3 tables [{store}]", lambda: read_stamps("default", tables))
    uses_redis = any(s.startswith("redis") for s in stores)
    for alias in ("locmem", "redis") if uses_redis else ("locmem",):
        cache = caches[alias]
        cache.set("bench-entry", ("entry", 1, 2, 3))
        keys = [f"django_conditional:stamp:default:{table}" for table in tables]
        measure(f"caches[{alias!r}].get", partial(cache.get, "bench-entry"))
        measure(f"caches[{alias!r}].get_many, 3 keys", partial(cache.get_many, keys))
        cache.delete("bench-entry")
    if uses_redis:
        import redis
        from django.conf import settings

        client = redis.Redis.from_url(settings.CACHES["redis"]["LOCATION"])
        raw_key = f"{settings.CACHES['redis']['KEY_PREFIX']}:raw"
        client.set(raw_key, b"x" * 200)
        measure("raw redis-py GET (no Django)", lambda: client.get(raw_key))
        measure("raw redis-py MGET, 3 keys (no Django)", lambda: client.mget([raw_key] * 3))

        def pipelined() -> object:
            pipe = client.pipeline(transaction=False)
            pipe.get(raw_key)
            pipe.mget([raw_key] * 3)
            return pipe.execute()

        measure("raw redis-py GET + MGET in one pipeline (no Django)", pipelined)
        client.delete(raw_key)
        client.close()
    return timings, errors


def profile_configs(
    worker: Worker, names: list[str], seconds: float, output: str
) -> dict[str, Any]:
    """Profile each configuration's warm requests for ``seconds``; write the report."""
    from pyinstrument import Profiler
    from pyinstrument.renderers import ConsoleRenderer

    lines: list[str] = []
    summary: dict[str, Any] = {"configs": {}}
    for name in names:
        prepared = worker.prepared[name]
        worker.ready(prepared)
        rules = prepared.rules > 0
        for _ in range(200):
            worker.driver.request(prepared.environ, rules=rules)
        profiler = Profiler(interval=0.0001)
        count = 0
        profiler.start()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            worker.driver.request(prepared.environ, rules=rules)
            count += 1
        session = profiler.stop()
        querysets = _querysets_per_request(worker, prepared.environ, rules=rules)
        root = session.root_frame()
        shares = inclusive_shares(root) if root is not None else {}
        per_request = session.duration / count * 1e6
        top = list(shares.items())[:45]
        summary["configs"][name] = {
            "requests": count,
            "us_per_request_profiled": per_request,
            "querysets_built_per_request": querysets,
            "inclusive_shares": dict(top),
        }
        lines += [
            f"== {name}: {count} warm requests, {per_request:.1f} us each under the profiler ==",
            f"QuerySet objects built per request: {querysets:g}",
            "",
            "Inclusive share of the time in Django's WSGIHandler.__call__, per function:",
            *(f"  {share:6.1%}  {function}" for function, share in top),
            "",
            "Call tree (pyinstrument, every frame, nodes under 1.5% hidden):",
            ConsoleRenderer(
                show_all=True,
                processor_options={"filter_threshold": 0.015},
                unicode=False,
                color=False,
            ).render(session),
            "",
        ]
    stores = sorted({p.store for p in worker.prepared.values() if p.store})
    micro, errors = micro_timings(worker, stores)
    summary["micro_us"] = micro
    summary["micro_errors"] = errors
    lines += [
        "== The parts of the warm 304 path, each timed alone (microseconds per call) ==",
        "",
        *(f"  {value:9.2f}  {label}" for label, value in micro.items()),
        *(f"  not measured: {label}: {error}" for label, error in errors.items()),
        "",
    ]
    Path(output).write_text("\n".join(lines))
    return summary
