"""Build the benchmark's data from nothing: the front page's rows and the scaling tables.

The 1-million-row table is filled by the database itself in one statement
(``generate_series`` on PostgreSQL, a recursive CTE on SQLite), so building
it takes seconds, not minutes.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from django.core.management import call_command
from django.db import connection, connections

from benchmarks.bench.models import SCALE_MODELS, Article, Author

__all__ = [
    "ARTICLES",
    "AUTHORS",
    "RULE_NAME",
    "SECTION_PREFIX",
    "build",
    "build_front_page",
    "build_rules",
    "build_scaling",
    "enable_rules",
    "enabled_rules",
    "reset_database",
]

ARTICLES = 10_000
AUTHORS = 100
_EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
_SUMMARY = (
    "A short summary of the article, long enough to look like the teaser a real front page "
    "shows under each headline: two sentences of plain text. Number {n} of the series."
)


def reset_database() -> None:
    """Start from an empty database: delete the SQLite file or recreate the PostgreSQL one."""
    settings = connection.settings_dict
    connections.close_all()
    if connection.vendor == "sqlite":
        path = Path(settings["NAME"])
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        dbname="postgres",
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        host=settings["HOST"],
        port=settings["PORT"],
        autocommit=True,
    ) as admin:
        name = sql.Identifier(settings["NAME"])
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(name))


def build_front_page() -> None:
    """100 authors and 10,000 articles, one published every hour."""
    authors = Author.objects.bulk_create(
        [Author(name=f"Author {n}") for n in range(1, AUTHORS + 1)], batch_size=1000
    )
    Article.objects.bulk_create(
        [
            Article(
                title=f"Article number {n}: a headline of ordinary length",
                slug=f"article-number-{n}",
                summary=_SUMMARY.format(n=n),
                published_at=_EPOCH + dt.timedelta(hours=n),
                author=authors[n % AUTHORS],
            )
            for n in range(1, ARTICLES + 1)
        ],
        batch_size=2000,
    )


RULE_NAME = "bench-rule"
SECTION_PREFIX = "bench-section-"


def _section_name(number: int) -> str:
    return f"{SECTION_PREFIX}{number:04d}"


def build_rules(count: int) -> None:
    """The rule that covers ``/rule/`` and ``count - 1`` that cover ``/section-N/*/``.

    The covering rule depends on the models ``@conditional(depends_on=...)``
    names, for everyone (the benchmark's requests carry no session). Each
    other rule has its own literal first segment, which no measured path has:
    an index by first segment finds none of them for ``/empty/`` or ``/rule/``.
    All are enabled; ``enable_rules`` chooses how many.
    """
    from django.contrib.contenttypes.models import ContentType

    from django_conditional.models import ConditionalRule

    models = list(ContentType.objects.get_for_models(Article, Author).values())
    covering = ConditionalRule.objects.create(
        name=RULE_NAME,
        path_patterns="/rule/",
        audience=ConditionalRule.Audience.EVERYONE,
        shared_caches=ConditionalRule.SharedCaches.PUBLIC,
    )
    covering.depends_on.set(models)
    sections = ConditionalRule.objects.bulk_create(
        [
            ConditionalRule(name=_section_name(number), path_patterns=f"/section-{number}/*/")
            for number in range(1, count)
        ],
        batch_size=500,
    )
    through = ConditionalRule.depends_on.through
    through.objects.bulk_create(
        [
            through(conditionalrule_id=rule.pk, contenttype_id=model.pk)
            for rule in sections
            for model in models
        ],
        batch_size=500,
    )


def enabled_rules() -> int:
    """How many rules are enabled in the database."""
    from django_conditional.models import ConditionalRule

    return ConditionalRule.objects.filter(enabled=True).count()


def enable_rules(count: int) -> None:
    """Enable the covering rule and the first ``count - 1`` section rules, disable the rest.

    Two UPDATEs, which move the rule table's stamp like any write: processes
    reload their rules, and the covering rule's pages get new tags.
    """
    from django_conditional.models import ConditionalRule

    sections = ConditionalRule.objects.filter(name__startswith=SECTION_PREFIX)
    last = _section_name(count - 1)
    sections.filter(name__lte=last).exclude(enabled=True).update(enabled=True)
    sections.filter(name__gt=last).exclude(enabled=False).update(enabled=False)
    ConditionalRule.objects.filter(name=RULE_NAME, enabled=False).update(enabled=True)


def build_scaling(sizes: tuple[int, ...]) -> None:
    """Fill each scaling table with ``size`` rows in one INSERT ... SELECT."""
    for size in sizes:
        model = SCALE_MODELS[size]
        table = connection.ops.quote_name(model._meta.db_table)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    f"INSERT INTO {table} (version, modified, title, grp) "
                    "SELECT 1, timestamptz '2024-01-01 00:00:00+00' + n * interval '1 second', "
                    f"'Row ' || n, n % 100 FROM generate_series(1, {int(size)}) AS n"
                )
                cursor.execute(f"ANALYZE {table}")
            else:
                # No parameters: SQLite then takes the statement as it is ("%" included).
                cursor.execute(
                    f"INSERT INTO {table} (version, modified, title, grp) "
                    "WITH RECURSIVE seq(n) AS "
                    f"(SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {int(size)}) "
                    "SELECT 1, strftime('%Y-%m-%d %H:%M:%S', 1704067200 + n, 'unixepoch'), "
                    "'Row ' || n, n % 100 FROM seq"
                )
                cursor.execute(f"ANALYZE {table}")


def build(sizes: tuple[int, ...], rules: int) -> dict[str, float]:
    """Recreate the database and fill it; returns seconds per step."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    reset_database()
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            # WAL lets readers in other processes (gunicorn's workers) read while one writes.
            cursor.execute("PRAGMA journal_mode=WAL")
    call_command("migrate", run_syncdb=True, verbosity=0)
    timings["schema"] = time.perf_counter() - start
    start = time.perf_counter()
    build_front_page()
    timings["front_page"] = time.perf_counter() - start
    start = time.perf_counter()
    build_rules(rules)
    timings["rules"] = time.perf_counter() - start
    start = time.perf_counter()
    build_scaling(sizes)
    timings["scaling"] = time.perf_counter() - start
    return timings
