"""A demo process that writes through every write path on command (for ``test_faults_live``).

Run with the demo's settings (``DJANGO_SETTINGS_MODULE=testproject.settings``). Prints one
JSON line when ready (the pages the test should watch), then reads one write path per line
on stdin and answers one JSON line each: ``stored``, or ``refused`` when the write raised
``StampsNotMoved`` (then nothing of it may be stored), or ``error`` with the exception.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from itertools import count

sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")

import django

django.setup()

from django.db import connection, transaction  # noqa: E402

from django_conditional.stamp_errors import StampsNotMoved  # noqa: E402
from testproject.demo.models import Article, Comment, Tag  # noqa: E402

_numbers = count(1)
tag = Tag.objects.order_by("pk").first()
other_tag = Tag.objects.order_by("-pk").first()
article = tag.articles.order_by("pk").first() if tag else None
if tag is None or other_tag is None or article is None:
    raise SystemExit("seed the demo first: manage.py seed_demo")


def _save() -> None:
    tag.name = f"Renamed {next(_numbers)}"
    tag.save()


def _update() -> None:
    Article.objects.filter(pk=article.pk).update(title=f"Updated {next(_numbers)}")


def _bulk_update() -> None:
    rows = list(Article.objects.order_by("pk")[:2])
    for row in rows:
        row.title = f"Bulk {next(_numbers)}"
    Article.objects.bulk_update(rows, ["title"])


def _m2m() -> None:
    if article.tags.filter(pk=other_tag.pk).exists():
        article.tags.remove(other_tag)
    else:
        article.tags.add(other_tag)


def _create() -> None:
    Comment.objects.create(article=article, author_name="Fault", body=f"Comment {next(_numbers)}")


def _delete() -> None:
    newest = Comment.objects.filter(article=article).order_by("-pk").first()
    if newest is not None:
        newest.delete()


def _raw_sql() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Tag._meta.db_table} SET name = %s WHERE id = %s",
            [f"Raw {next(_numbers)}", tag.pk],
        )


@transaction.atomic
def _atomic() -> None:
    _save()
    _create()


WRITES: dict[str, Callable[[], None]] = {
    "save": _save,
    "update": _update,
    "bulk_update": _bulk_update,
    "m2m": _m2m,
    "create": _create,
    "delete": _delete,
    "raw_sql": _raw_sql,
    "atomic": _atomic,
}


def main() -> None:
    pages = ["/", f"/tags/{tag.slug}/", "/about/", article.get_absolute_url(), "/feed.txt"]
    print(json.dumps({"ready": True, "pages": pages, "writes": list(WRITES)}), flush=True)
    for line in sys.stdin:
        name = line.strip()
        began = time.time()
        why = ""
        try:
            WRITES[name]()
        except StampsNotMoved as error:
            result, why = "refused", str(error)
        except Exception as error:  # reported to the test, which fails on it
            result = f"error: {type(error).__name__}: {error}"
        else:
            result = "stored"
        answer = {"write": name, "result": result, "began": began, "why": why}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
