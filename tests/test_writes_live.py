"""Concurrent edits of one article on gunicorn (4 workers x 4 threads): one wins, none is lost.

Each round creates an article, reads what an editor would hold (its tag, or the
version in a form), then releases WRITERS edits at once (a barrier), all from that
state: exactly one must win, every other one must be refused (412, or the form's
"Someone else saved" error), none a 5xx, and the stored article must be the
winner's. Through the demo's JSON API (If-Match), its DRF viewset, its edit page
and its admin. Each has a control, the same edits unguarded (Django's
``condition``, a plain ``UpdateView``, an admin without the mixin:
``tests/live_urls.py``), which must lose updates in the same test: otherwise the
test could not tell a guard from luck.

On the database the suite runs on: SQLite (a file of its own, with the demo's
settings for concurrent writers), or the PostgreSQL or MariaDB test database,
which the server shares with this test (its rows are committed).
"""

from __future__ import annotations

import html
import http.cookiejar
import json
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tests.gunicorn import serve

pytestmark = [pytest.mark.live, pytest.mark.stateful, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
WRITERS = 8
ROUNDS = 10
TIMEOUT = 60
USERNAME, PASSWORD = "editor", "live-test-password"


@dataclass(frozen=True)
class Reply:
    status: int
    etag: str | None
    body: bytes


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a form's 302 is the answer to count


@dataclass
class Api:
    port: int
    cookies: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)

    def send(self, method: str, path: str, body: object = None, **headers: str) -> Reply:
        """A JSON request (``body`` encoded), or a form's when ``body`` is a dict of str."""
        data = None
        if isinstance(body, dict) and body.get("csrfmiddlewaretoken"):
            data = urllib.parse.urlencode(body, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, headers=headers, method=method
        )
        opener = urllib.request.build_opener(
            _NoRedirects, urllib.request.HTTPCookieProcessor(self.cookies)
        )
        try:
            with opener.open(request, timeout=TIMEOUT) as response:
                return Reply(response.status, response.headers.get("ETag"), response.read())
        except urllib.error.HTTPError as error:
            return Reply(error.code, error.headers.get("ETag"), error.read())

    def csrf(self) -> str:
        return next(c.value for c in self.cookies if c.name == "csrftoken")

    def log_in(self) -> None:
        page = self.send("GET", "/admin/login/")
        assert page.status == 200
        done = self.send(
            "POST",
            "/admin/login/?next=/admin/",
            {"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": self.csrf()},
        )
        assert done.status == 302, done.body[:500]


def _server_env(tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        # The demo, and the controls beside it (tests/live_urls.py).
        "DJANGO_SETTINGS_MODULE": "tests.live_settings",
        "DJANGO_DEBUG": "0",
        "CONDITIONAL_TEST_CACHE": "locmem",
    }
    env.pop("CONDITIONAL_STAMP_REDIS_URL", None)
    name = str(connection.settings_dict["NAME"])
    if connection.vendor == "sqlite":
        env |= {"CONDITIONAL_TEST_DATABASE": "sqlite"}
        env["CONDITIONAL_SQLITE_PATH"] = str(tmp_path / "writes.sqlite3")
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput"],
            env=env, cwd=ROOT, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    elif connection.vendor == "postgresql":
        env |= {"CONDITIONAL_TEST_DATABASE": "postgresql", "PGDATABASE": name}
    elif connection.vendor == "mysql":
        env |= {"CONDITIONAL_TEST_DATABASE": "mariadb", "MYSQL_DATABASE": name}
    else:  # pragma: no cover - the suite runs on these three
        pytest.fail(f"no live setup for {connection.vendor}")
    # The editor of the forms, in the server's database (the SQLite file, or the shared one).
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c",
         "from django.contrib.auth.models import User; "
         f"User.objects.create_superuser({USERNAME!r}, 'editor@example.com', {PASSWORD!r})"],
        env=env, cwd=ROOT, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return env


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    env = _server_env(tmp_path)
    with serve(env, tmp_path / "gunicorn.log", workers=4, threads=4) as port:
        api = Api(port)
        api.log_in()
        yield api


@dataclass
class Round:
    won: int
    refused: int
    others: Counter[int]
    winners: list[str]
    stored: str

    @property
    def problems(self) -> list[str]:
        """What makes this round a lost update or a failure ([] for a correct round)."""
        found = []
        if self.won != 1:
            found.append(f"{self.won} writers won")
        if self.refused != WRITERS - 1:
            found.append(f"{self.refused} were refused")
        if self.others:
            found.append(f"other answers: {dict(self.others)}")
        if self.winners and self.stored not in self.winners:
            found.append(f"stored {self.stored!r}, which no acknowledged writer sent")
        if len(self.winners) > 1:
            found.append(f"{len(self.winners) - 1} acknowledged updates lost")
        return found


def _field(page: bytes, pattern: str) -> str:
    found = re.search(pattern.encode(), page)
    assert found, page[:3000]
    return html.unescape(found.group(1).decode())


def _form_edit(
    site: Api, path: str, fields: Callable[[bytes], dict[str, str]]
) -> Callable[..., Any]:
    """A form to post from the page at ``path`` as one editor holds it (its version, its token)."""
    page = site.send("GET", path)
    assert page.status == 200, page.body[:500]
    held = fields(page.body)

    def post(title: str) -> Reply:
        return site.send("POST", path, {**held, "title": title, "csrfmiddlewaretoken": site.csrf()})

    return post


def _version_of(page: bytes) -> dict[str, str]:
    found = re.search(rb'name="conditional_version" value="(\d+)"', page)
    return {"conditional_version": found.group(1).decode()} if found else {}


def edit_page_fields(page: bytes) -> dict[str, str]:
    return {"body": _field(page, r'name="body"[^>]*>([^<]*)</textarea>'), **_version_of(page)}


def admin_fields(page: bytes) -> dict[str, str]:
    fields = {
        "author": _field(page, r'name="author"[^>]*>\s*(?:<option[^>]*>[^<]*</option>\s*)*?'
                               r'<option value="(\d+)" selected>'),
        "slug": _field(page, r'name="slug" value="([^"]*)"'),
        "body": _field(page, r'name="body"[^>]*>([^<]*)</textarea>'),
        "published_at_0": _field(page, r'name="published_at_0" value="([^"]*)"'),
        "published_at_1": _field(page, r'name="published_at_1" value="([^"]*)"'),
        "is_published": "on",
        "_save": "Save",
        **_version_of(page),
    }  # fmt: skip
    if b'name="comments-TOTAL_FORMS"' in page:  # the demo's comment inline
        fields |= {f"comments-{name}": "0" for name in ("TOTAL_FORMS", "INITIAL_FORMS")}
        fields |= {"comments-MIN_NUM_FORMS": "0", "comments-MAX_NUM_FORMS": "1000"}
    return fields


# How each way in is edited: (request for writer's title) built from a new article's
# JSON, and how an answer reads: "won", "refused" or None (anything else).
Edit = Callable[[str], Reply]
WAYS: dict[str, tuple[Callable[[Api, dict[str, Any]], Edit], Callable[[Reply], str | None]]] = {}


def _json_edit(base: str, method: str) -> Callable[[Api, dict[str, Any]], Edit]:
    def prepare(site: Api, article: dict[str, Any]) -> Edit:
        path = f"{base}{article['id']}/"
        # The controls that ignore If-Match send no tag: any will do for them.
        tag = site.send("GET", path).etag or '"none"'

        def edit(title: str) -> Reply:
            return site.send(method, path, {"title": title, "body": "edited"}, **{"If-Match": tag})

        return edit

    return prepare


def _json_answer(reply: Reply) -> str | None:
    if 200 <= reply.status < 300:
        return "won"
    return "refused" if reply.status == 412 else None


def _form_answer(reply: Reply) -> str | None:
    if reply.status == 302:
        return "won"
    stale = reply.status == 200 and b"Someone else saved this article" in reply.body
    return "refused" if stale else None


WAYS.update(
    {
        "api": (_json_edit("/api/articles/", "PUT"), _json_answer),
        "api control": (_json_edit("/api/unguarded/articles/", "PUT"), _json_answer),
        "drf": (_json_edit("/api/drf/articles/", "PATCH"), _json_answer),
        "drf control": (_json_edit("/control/drf/articles/", "PATCH"), _json_answer),
        "edit page": (
            lambda site, a: _form_edit(site, f"/articles/{a['slug']}/edit/", edit_page_fields),
            _form_answer,
        ),
        "edit page control": (
            lambda site, a: _form_edit(
                site, f"/control/articles/{a['slug']}/edit/", edit_page_fields
            ),
            _form_answer,
        ),
        "admin": (
            lambda site, a: _form_edit(
                site, f"/admin/demo/article/{a['id']}/change/", admin_fields
            ),
            _form_answer,
        ),
        "admin control": (
            lambda site, a: _form_edit(
                site, f"/control-admin/demo/article/{a['id']}/change/", admin_fields
            ),
            _form_answer,
        ),
    }
)


def race(site: Api, way: str, number: int) -> Round:
    """One round: a new article, then WRITERS edits from one held state, released together."""
    prepare, answer = WAYS[way]
    created = site.send("POST", "/api/articles/", {"title": f"round {number}", "body": "-"})
    assert created.status == 201, created.body
    article = json.loads(created.body)
    edit = prepare(site, article)
    barrier = threading.Barrier(WRITERS)

    def write(writer: int) -> tuple[Reply, str]:
        title = f"writer {writer} of round {number}"
        barrier.wait(timeout=TIMEOUT)
        return edit(title), title

    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(write, range(WRITERS)))
    stored = json.loads(site.send("GET", f"/api/articles/{article['id']}/").body)["title"]
    outcomes = [(answer(reply), reply, title) for reply, title in results]
    return Round(
        won=sum(1 for outcome, _, _ in outcomes if outcome == "won"),
        refused=sum(1 for outcome, _, _ in outcomes if outcome == "refused"),
        others=Counter(reply.status for outcome, reply, _ in outcomes if outcome is None),
        winners=[title for outcome, _, title in outcomes if outcome == "won"],
        stored=stored,
    )


@pytest.mark.parametrize("way", ["api", "drf", "edit page", "admin"])
def test_concurrent_edits_from_one_state_have_one_winner(api: Api, way: str) -> None:
    rounds = [race(api, way, number) for number in range(ROUNDS)]
    report = [(r.won, r.refused, dict(r.others), r.problems) for r in rounds]
    assert all(not r.problems for r in rounds), report
    control = f"{way} control"
    summary = (
        f"\n{connection.vendor}, {way}: {ROUNDS} rounds x {WRITERS} writers: "
        f"{sum(r.won for r in rounds)} won, {sum(r.refused for r in rounds)} refused, "
        "0 lost, 0 5xx"
    )
    if control in WAYS:
        # The control: the same test against unguarded edits must fail in some round.
        controls = [race(api, control, number) for number in range(ROUNDS)]
        lost = sum(max(0, len(r.winners) - 1) for r in controls)
        assert any(r.problems for r in controls), (
            f"the control ({control}) lost no update in {ROUNDS} rounds of {WRITERS}: "
            "the test cannot tell a guard from luck"
        )
        summary += (
            f"; control: {lost} acknowledged updates lost, "
            f"{sum(1 for r in controls if r.problems)} of {ROUNDS} rounds wrong"
        )
    print(summary)
