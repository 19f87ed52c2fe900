"""``manage.py conditional_rules list|export|import``: list rules, move them between databases.

The file names models by label, never by content-type id (``rule_transfer``).
An import checks the whole file first and writes nothing when anything is
wrong; what it prints is exactly what it wrote.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from django_conditional.rule_transfer import (
    TransferError,
    dump_document,
    export_document,
    import_rules,
    parse_document,
)


class Command(BaseCommand):
    """List, export or import conditional rules."""

    help = (
        "List the conditional rules, export them to JSON (models named by label), or import "
        "such a file (checked whole first; nothing is written when anything is wrong)."
    )
    # call_command(..., stdin=StringIO(...)) reads an import from it ('-').
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(
            dest="action", required=True, metavar="{list,export,import}"
        )
        actions.add_parser(
            "list", help="One line per rule: name, enabled, priority, audience, patterns."
        )
        export = actions.add_parser("export", help="Write rules as JSON.")
        export.add_argument(
            "--output",
            default="-",
            metavar="FILE",
            help="The file to write ('-', the default: stdout).",
        )
        export.add_argument(
            "--name",
            dest="names",
            action="extend",
            nargs="+",
            default=[],
            metavar="NAME",
            help="Export only these rules (repeatable).",
        )
        load = actions.add_parser(
            "import", help="Create (and with --replace update) rules from JSON."
        )
        load.add_argument("file", metavar="FILE", help="The file to read ('-': stdin).")
        load.add_argument(
            "--dry-run",
            action="store_true",
            help="Say what would be created and updated; write nothing.",
        )
        load.add_argument(
            "--replace", action="store_true", help="Update the rules whose names already exist."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "list":
                self._list()
            elif action == "export":
                self._export(options["output"], options["names"])
            else:
                self._import(
                    options["file"], options, dry_run=options["dry_run"], replace=options["replace"]
                )
        except TransferError as error:
            raise CommandError(_problems_text(error)) from error
        except DatabaseError as error:
            raise CommandError(
                f"The rules table cannot be used ({error}): "
                "run 'manage.py migrate django_conditional'."
            ) from error

    def _list(self) -> None:
        from django_conditional.models import ConditionalRule

        rows = list(ConditionalRule.objects.order_by("-priority", "name"))
        if not rows:
            self.stdout.write("No conditional rules.")
        for row in rows:
            patterns = [
                *(
                    f"path {line.strip()}"
                    for line in row.path_patterns.splitlines()
                    if line.strip()
                ),
                *(f"name {line.strip()}" for line in row.url_names.splitlines() if line.strip()),
            ]
            self.stdout.write(
                f"{row.name} | {'enabled' if row.enabled else 'disabled'} "
                f"| priority {row.priority} | {row.audience} "
                f"| {', '.join(patterns) or 'no patterns'}"
            )

    def _export(self, output: str, names: list[str]) -> None:
        document = export_document(names)
        text = dump_document(document)
        exported = [rule["name"] for rule in document["rules"]]
        summary = f"Exported {len(exported)} rule(s)"
        if output == "-":
            self.stdout.write(text, ending="")
            # The JSON is on stdout; the summary goes to stderr so a pipe gets the file alone.
            self.stderr.write(f"{summary}.")
            return
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as error:
            raise CommandError(f"Cannot write {output!r}: {error.strerror or error}.") from error
        self.stdout.write(
            f"{summary} to {output}: {', '.join(exported)}"
            if exported
            else f"{summary} to {output}."
        )

    def _import(self, file: str, options: dict[str, Any], *, dry_run: bool, replace: bool) -> None:
        if file == "-":
            stream: TextIO = options.get("stdin") or sys.stdin
            text = stream.read()
        else:
            try:
                text = Path(file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                why = (
                    error.strerror if isinstance(error, OSError) else f"not UTF-8 ({error.reason})"
                )
                raise CommandError(f"Cannot read {file!r}: {why or error}.") from error
        try:
            rules = parse_document(text)
        except TransferError as error:
            where = "stdin" if file == "-" else repr(file)
            raise CommandError(
                f"{where} cannot be imported "
                f"({_count(len(error.problems))}; nothing was written):\n"
                + "\n".join(f"  - {problem}" for problem in error.problems)
            ) from error
        result = import_rules(rules, replace=replace, dry_run=dry_run)
        for line in result.summary():
            self.stdout.write(line)


def _count(problems: int) -> str:
    return "1 problem" if problems == 1 else f"{problems} problems"


def _problems_text(error: TransferError) -> str:
    return "\n".join(error.problems)
