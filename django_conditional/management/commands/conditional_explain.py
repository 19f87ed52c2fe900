"""``manage.py conditional_explain URL``: what the rules and the middleware do with one request.

Prints how the path resolves, each rule's verdict, the validator the
middleware would send and what a revalidation gets (``explain``). Writes
nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_conditional.explain import ExplainError, explain_url


class Command(BaseCommand):
    """Explain one URL: rules, validator, revalidation."""

    help = (
        "Explain what the conditional rules do with a request for URL (a full URL or a path): "
        "which rule applies and why the others do not, the validator it derives, and what a "
        "revalidation gets."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("url", help="A URL (http://127.0.0.1:8000/plain/authors/) or a path.")
        parser.add_argument(
            "--user",
            dest="username",
            metavar="USERNAME",
            help="Request as this user (logged in: the request carries a session cookie).",
        )
        parser.add_argument(
            "--method", default="GET", help="GET (default) or HEAD: the methods rules answer."
        )
        parser.add_argument(
            "--etag",
            metavar="TAG",
            help='Send If-None-Match: TAG (e.g. W/"abc") and say whether the answer is 304.',
        )
        parser.add_argument(
            "--header",
            dest="headers",
            action="append",
            default=[],
            metavar='"Name: value"',
            help="A request header; repeat for several.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            explanation = explain_url(
                options["url"],
                method=options["method"],
                username=options["username"],
                etag=options["etag"],
                headers=options["headers"],
            )
        except ExplainError as error:
            raise CommandError(str(error)) from error
        for line in explanation.lines():
            self.stdout.write(line)
