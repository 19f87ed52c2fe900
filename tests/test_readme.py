"""Every Python snippet of the README runs as written, in a scratch project.

The README's examples are one app, ``blog``. Each ``python`` block carries a
marker comment on the line before it saying what it is:
``<!-- readme-test: models -->`` (``blog/models.py``), ``views`` (in order,
``blog/views.py``), ``settings``, ``migration`` (a migration of ``blog``) or
``shell`` (run after the pages were served). A fresh interpreter builds the
project from them, migrates it, serves every example view twice (a 200 with
validators, then a 304) and runs the shell snippets, warnings as errors.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
KINDS = {"models", "views", "settings", "migration", "shell"}
MARKER = re.compile(r"<!-- readme-test: (?P<kind>[a-z]+) -->")

# The example views, where the scratch URLconf puts them, and how each answers.
URLS = """
from django.urls import path

from blog import views

urlpatterns = [
    path("", views.front_page),
    path("w1/<slug:slug>/", views.article),
    path("articles/<slug:slug>/", views.article_detail),
    path("tags/<slug:slug>/", views.tag_detail),
    path("list/", views.ArticleList.as_view()),
    path("authors/<slug:slug>/", views.AuthorDetail.as_view()),
    path("stats/", views.Stats.as_view()),
    path("cloud/", views.TagCloud.as_view()),
    path("feed/", views.article_feed),
]
"""

TEMPLATES = {
    "article.html": "{{ article.title }}",
    "tag.html": "{% for article in articles %}{{ article.title }} {% endfor %}",
    "stats.html": "stats",
    "tags.html": "tags",
    "blog/article_list.html": "{% for a in object_list %}{{ a.title }} ({{ a.author.name }}) "
    "{% endfor %}",
    "blog/author_detail.html": "{{ object.name }}",
}

SETTINGS = """
{snippet}
assert "django_conditional" in INSTALLED_APPS
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    *(app for app in INSTALLED_APPS if isinstance(app, str)),
    "blog",
]
SECRET_KEY = "readme-test"
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}}}
# The README's own MIDDLEWARE (way 2), as written.
assert "django_conditional.middleware.ConditionalRulesMiddleware" in MIDDLEWARE
ROOT_URLCONF = "blog.urls"
TEMPLATES = [{{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {{"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]}},
}}]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
ALLOWED_HOSTS = ["testserver"]
"""

RUN = """
import datetime as dt
import importlib
import pathlib

import django

django.setup()

from django.core.management import call_command
from django.test import Client

call_command("makemigrations", "blog", verbosity=0)
pathlib.Path("blog/migrations/0002_triggers.py").write_text(MIGRATION)
importlib.invalidate_caches()
call_command("migrate", verbosity=0)
call_command("check", "--database", "default", fail_level="WARNING")

from blog.models import Article, Author, Comment, Tag

author = Author.objects.create(name="Ada", slug="ada")
tag = Tag.objects.create(name="HTTP", slug="http")
article = Article.objects.create(
    author=author,
    title="Hello",
    slug="hello",
    published=dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc),
)
article.tags.add(tag)
Comment.objects.create(article=article, body="First!")

# A Last-Modified is sent once the stamp clock has left its second: date the setup's
# writes two seconds back rather than sleeping.
from django.db import connection

with connection.cursor() as cursor:
    cursor.execute("UPDATE django_conditional_changestamp SET token = token - 2000000000")

client = Client()
kept = {}
for url in ["/", "/w1/hello/", "/articles/hello/", "/tags/http/", "/list/",
            "/authors/ada/", "/stats/", "/cloud/", "/feed/"]:
    first = client.get(url)
    assert first.status_code == 200, (url, first.status_code)
    if "ETag" in first:
        headers = {"if-none-match": first["ETag"]}
    else:
        headers = {"if-modified-since": first["Last-Modified"]}
    again = client.get(url, headers=headers)
    assert again.status_code == 304, (url, again.status_code)
    kept[url] = headers

for snippet in SHELL:
    exec(compile(snippet, "README.md", "exec"), {})

# touch(Article) moved the stamps: the list is sent again.
assert client.get("/list/", headers=kept["/list/"]).status_code == 200
print("ok")
"""


def readme_snippets() -> list[tuple[str, str]]:
    """(kind, code) for each ``python`` block of the README, in order."""
    lines = README.read_text().splitlines()
    snippets = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.strip() == "```python":
            indent = line[: len(line) - len(line.lstrip())]
            before = lines[index - 1].strip() if index else ""
            marker = MARKER.fullmatch(before)
            kind = marker["kind"] if marker else None
            assert kind in KINDS, (
                f"README.md line {index + 1}: a python block needs a "
                f"'<!-- readme-test: KIND -->' line before it, KIND one of {sorted(KINDS)}"
            )
            end = lines.index(f"{indent}```", index + 1)
            body = "\n".join(text[len(indent) :] for text in lines[index + 1 : end])
            snippets.append((kind, textwrap.dedent(body) + "\n"))
            index = end
        index += 1
    return snippets


def test_every_python_block_is_marked_and_each_kind_is_there():
    kinds = [kind for kind, _ in readme_snippets()]
    assert set(kinds) == KINDS
    assert kinds.count("models") == kinds.count("migration") == 1


def test_the_readme_snippets_run_as_written(tmp_path):
    snippets = readme_snippets()

    def joined(kind: str) -> str:
        return "\n\n".join(code for each, code in snippets if each == kind)

    app = tmp_path / "blog"
    (app / "migrations").mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "migrations" / "__init__.py").write_text("")
    (app / "models.py").write_text(joined("models"))
    (app / "views.py").write_text(joined("views"))
    (app / "urls.py").write_text(URLS)
    for name, text in TEMPLATES.items():
        (app / "templates" / name).parent.mkdir(parents=True, exist_ok=True)
        (app / "templates" / name).write_text(text)
    (tmp_path / "readme_settings.py").write_text(SETTINGS.format(snippet=joined("settings")))
    script = (
        f"MIGRATION = {joined('migration')!r}\n"
        f"SHELL = {[code for kind, code in snippets if kind == 'shell']!r}\n" + RUN
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "readme_settings",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (result.returncode, result.stdout.splitlines()[-1:]) == (0, ["ok"]), result.stderr
