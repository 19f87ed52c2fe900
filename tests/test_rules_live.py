"""The demo's rule-covered pages on gunicorn (2 workers, 4 threads), rules edited elsewhere.

The rules and the data change through ``manage.py shell`` in a separate process, as an
admin's save on another server would; every answer is what crossed the socket. A
changed rule is applied by every worker without a restart: at once for pages the rule
covered (their derivation reads the rule tables' stamps), within
``CONDITIONAL_RULES_REFRESH`` for a page no rule covered before.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gunicorn import serve

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parent.parent
# Enough requests that both workers answer (gunicorn hands connections to either).
ROUNDS = 12


@dataclass
class Reply:
    status: int
    etag: str | None
    body: bytes
    explained: str


@dataclass
class Site:
    port: int
    env: dict[str, str]

    def get(self, path: str, *, etag: str | None = None, session: str | None = None) -> Reply:
        headers = {}
        if etag is not None:
            headers["If-None-Match"] = etag
        if session is not None:
            headers["Cookie"] = f"sessionid={session}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            return Reply(
                response.status,
                response.getheader("ETag"),
                response.read(),
                response.getheader("X-Conditional") or "",
            )
        finally:
            connection.close()

    def shell(self, code: str) -> str:
        """Run ``code`` in ``manage.py shell``, another process: what it printed."""
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "shell", "-c", code],
            env=self.env, cwd=ROOT, check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        return result.stdout.strip()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "testproject.settings",
        "DJANGO_DEBUG": "0",
        "CONDITIONAL_TEST_DATABASE": "sqlite",
        "CONDITIONAL_TEST_CACHE": "locmem",
        "CONDITIONAL_SQLITE_PATH": str(tmp_path / "demo.sqlite3"),
    }
    env.pop("CONDITIONAL_STAMP_REDIS_URL", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    for command in (["migrate", "--noinput"], ["seed_demo", "--articles", "12"]):
        subprocess.run([*manage, *command], env=env, cwd=ROOT, check=True, capture_output=True)
    # DEBUG for the X-Conditional header, which the assertions print when they fail.
    served = serve({**env, "DJANGO_DEBUG": "1"}, tmp_path / "gunicorn.log", workers=2, threads=4)
    with served as port:
        yield Site(port, env)


def test_rules_edited_by_another_process_apply_in_every_worker(site: Site) -> None:
    first = site.get("/plain/authors/")
    assert first.status == 200
    assert first.etag is not None, first.explained
    for _ in range(ROUNDS):
        again = site.get("/plain/authors/", etag=first.etag)
        assert again.status == 304, again.explained

    # A write to a model the rule names: a new tag in every worker at once.
    site.shell(
        "from testproject.demo.models import Author; "
        "Author.objects.create(name='Ada Lovelace', slug='ada')"
    )
    for _ in range(ROUNDS):
        changed = site.get("/plain/authors/", etag=first.etag)
        assert changed.status == 200, changed.explained
        assert b"Ada Lovelace" in changed.body
    current = changed.etag

    # The rule disabled elsewhere: no worker answers from it any more, at once.
    site.shell(
        "from django_conditional.models import ConditionalRule; "
        "rule = ConditionalRule.objects.get(name='Plain author index'); "
        "rule.enabled = False; rule.save()"
    )
    for _ in range(ROUNDS):
        passed = site.get("/plain/authors/", etag=current)
        assert passed.status == 200
        assert passed.etag is None, passed.explained

    # Enabled again with another header: covered again within the refresh, by every worker.
    site.shell(
        "from django_conditional.models import ConditionalRule; "
        "rule = ConditionalRule.objects.get(name='Plain author index'); "
        "rule.enabled = True; rule.max_age = 7; rule.save()"
    )
    deadline = time.monotonic() + 5
    covered = 0
    while covered < ROUNDS:
        reply = site.get("/plain/authors/")
        covered = covered + 1 if reply.etag is not None else 0
        assert time.monotonic() < deadline, reply.explained
    assert reply.etag != current  # the rule's form is in its tag


def test_per_user_copies_never_cross_users(site: Site) -> None:
    sessions = site.shell(
        "from django.contrib.auth import get_user_model, SESSION_KEY, BACKEND_SESSION_KEY, "
        "HASH_SESSION_KEY; from django.contrib.sessions.backends.db import SessionStore\n"
        "for name in ('ann', 'bob'):\n"
        "    user = get_user_model().objects.create_user(name, password='x')\n"
        "    session = SessionStore()\n"
        "    session[SESSION_KEY] = str(user.pk)\n"
        "    session[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
        "    session[HASH_SESSION_KEY] = user.get_session_auth_hash()\n"
        "    session.save()\n"
        "    print('session:' + session.session_key)"
    ).splitlines()
    ann, bob = [line.split(":", 1)[1] for line in sessions if line.startswith("session:")]
    ann_page = site.get("/plain/me/", session=ann)
    assert ann_page.body == b"Hello, ann.\n"
    assert ann_page.etag is not None, ann_page.explained
    for _ in range(ROUNDS):
        assert site.get("/plain/me/", etag=ann_page.etag, session=ann).status == 304
        bob_page = site.get("/plain/me/", etag=ann_page.etag, session=bob)
        assert bob_page.status == 200
        assert bob_page.body == b"Hello, bob.\n"
        anonymous = site.get("/plain/me/", etag=ann_page.etag)
        assert anonymous.status == 200
        assert anonymous.body == b"Hello, anonymous visitor.\n"
    # The anonymous-only author index passes both users' requests to the view.
    anonymous_index = site.get("/plain/authors/")
    for session in (ann, bob):
        reply = site.get("/plain/authors/", etag=anonymous_index.etag, session=session)
        assert reply.status == 200
        assert reply.etag is None
