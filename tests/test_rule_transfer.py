"""``rule_transfer`` and ``manage.py conditional_rules``: rules moved between databases as JSON."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.forms.models import model_to_dict

from django_conditional.models import ConditionalRule
from django_conditional.rule_transfer import FORMAT, VERSION, rule_fields
from tests.rule_factory import make_rule

pytestmark = pytest.mark.django_db


@pytest.fixture
def rules() -> list[ConditionalRule]:
    return [
        make_rule(
            "Articles",
            url_names="demo:plain-article",
            object_model="demo.Article",
            object_field="slug",
            object_kwarg="slug",
            depends_on=("demo.Author", "demo.Tag"),
            audience="everyone",
            max_age=0,
            s_maxage=60,
            shared_caches="public",
            must_revalidate=True,
            vary="Accept",
            priority=5,
            notes="détail",
        ),
        make_rule(
            "Authors",
            path_patterns="/plain/authors/\n/plain/writers/",
            depends_on=("demo.Author", "demo.Article"),
            enabled=False,
        ),
        make_rule("Me", path_patterns="/plain/me/", depends_on=("auth.User",), audience="per_user"),
    ]


def snapshot() -> dict[str, dict[str, Any]]:
    """Every rule's fields by name, models by label (ids differ between databases)."""
    found = {}
    for rule in ConditionalRule.objects.all():
        values = model_to_dict(rule, exclude=["id", "depends_on", "object_model"])
        values["depends_on"] = sorted(
            str(ct.model_class()._meta.label) for ct in rule.depends_on.all()
        )
        values["object_model"] = rule.object_model and rule.object_model.model_class()._meta.label
        found[rule.name] = values
    return found


def run(*args: str, stdin: str | None = None) -> str:
    out = StringIO()
    extra: dict[str, Any] = {} if stdin is None else {"stdin": StringIO(stdin)}
    call_command("conditional_rules", *args, stdout=out, stderr=StringIO(), **extra)
    return out.getvalue()


def document(*entries: dict[str, Any], **top: Any) -> str:
    return json.dumps({"format": FORMAT, "version": VERSION, "rules": list(entries), **top})


def test_export_names_models_by_label(rules):
    exported = json.loads(run("export"))
    assert (exported["format"], exported["version"]) == (FORMAT, VERSION)
    by_name = {rule["name"]: rule for rule in exported["rules"]}
    assert [rule["name"] for rule in exported["rules"]] == ["Articles", "Authors", "Me"]
    assert by_name["Articles"]["depends_on"] == ["demo.Author", "demo.Tag"]
    assert by_name["Articles"]["object_model"] == "demo.Article"
    assert by_name["Me"]["object_model"] is None
    assert set(by_name["Me"]) == set(rule_fields())
    assert not {"id", "created", "modified", "refusals", "counter"} & set(by_name["Me"])


def test_export_round_trips_into_an_empty_table(rules, tmp_path):
    before = snapshot()
    path = tmp_path / "rules.json"
    assert (
        run("export", "--output", str(path))
        == f"Exported 3 rule(s) to {path}: Articles, Authors, Me\n"
    )
    ConditionalRule.objects.all().delete()
    assert run("import", str(path)) == "Created 3 rules, updated 0: Articles, Authors, Me\n"
    assert snapshot() == before


def test_export_of_named_rules_and_import_from_stdin(rules):
    text = run("export", "--name", "Me", "--name", "Authors")
    assert [rule["name"] for rule in json.loads(text)["rules"]] == ["Authors", "Me"]
    ConditionalRule.objects.filter(name__in=["Me", "Authors"]).delete()
    assert run("import", "-", stdin=text) == "Created 2 rules, updated 0: Authors, Me\n"


def test_export_of_an_unknown_name_is_an_error(rules, tmp_path):
    path = tmp_path / "out.json"
    with pytest.raises(CommandError, match="No rule named 'Nope'"):
        run("export", "--name", "Nope", "Me", "--output", str(path))
    assert not path.exists()


def test_dry_run_writes_nothing(rules):
    text = run("export")
    ConditionalRule.objects.filter(name="Me").delete()
    changed = json.loads(text)
    changed["rules"][0]["priority"] = 99
    before = snapshot()
    out = run("import", "-", "--dry-run", "--replace", stdin=json.dumps(changed))
    assert out.splitlines() == [
        "Would create 1 rule, update 1: Me, Articles (dry run: nothing written)",
        "Would leave 1 rule unchanged (stored as in the file): Authors",
    ]
    assert snapshot() == before


def test_existing_names_without_replace_write_nothing(rules):
    text = run("export")
    ConditionalRule.objects.filter(name="Me").delete()
    before = snapshot()
    with pytest.raises(CommandError, match="already exist: 'Articles', 'Authors'") as error:
        run("import", "-", stdin=text)
    assert "--replace" in str(error.value)
    assert snapshot() == before


def test_replace_updates_existing_rules(rules):
    exported = json.loads(run("export"))
    articles = exported["rules"][0]
    articles["depends_on"] = ["demo.Comment"]
    articles["object_model"] = None
    articles["object_field"] = articles["object_kwarg"] = ""
    articles["notes"] = "changed"
    rule = ConditionalRule.objects.get(name="Articles")
    rule.refusals.create(path="/x/", reason="r")
    authors = ConditionalRule.objects.get(name="Authors")
    authors.refusals.create(path="/y/", reason="r")
    out = run("import", "-", "--replace", stdin=json.dumps(exported))
    assert out.splitlines() == [
        "Created 0 rules, updated 1: Articles",
        "Left 2 rules unchanged (stored as in the file): Authors, Me",
    ]
    rule.refresh_from_db()
    assert rule.notes == "changed"
    assert rule.object_model is None
    assert [ct.model_class() for ct in rule.depends_on.all()] == [apps.get_model("demo.Comment")]
    assert rule.pk == ConditionalRule.objects.get(name="Articles").pk
    assert authors.refusals.count() == 1  # an unchanged rule is not saved again


def test_a_file_may_leave_out_fields_that_have_defaults():
    out = run("import", "-", stdin=document({"name": "Minimal", "path_patterns": "/about/"}))
    assert out == "Created 1 rule, updated 0: Minimal\n"
    rule = ConditionalRule.objects.get(name="Minimal")
    assert (rule.methods, rule.audience, rule.enabled) == ("GET,HEAD", "anonymous", True)


GOOD = {"name": "Good", "path_patterns": "/plain/authors/"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("{nope", "not JSON: .* line 1, column 2", id="not-json"),
        pytest.param("[]", "a JSON list, not an object", id="not-an-object"),
        pytest.param(document(GOOD, format="other"), "format is 'other'", id="format"),
        pytest.param(document(GOOD, version=2), "version 2 is not supported", id="version"),
        pytest.param(document(GOOD, extra=1), "Unknown key.*'extra'", id="top-level-key"),
        pytest.param(
            json.dumps({"format": FORMAT, "version": 1, "rules": {}}),
            "rules is a JSON object, not a list",
            id="rules-not-a-list",
        ),
        pytest.param(document("x"), "rule 1: a JSON string, not an object", id="rule-not-object"),
        pytest.param(document({**GOOD, "colour": "red"}), "unknown field 'colour'", id="field"),
        pytest.param(document({**GOOD, "id": 3}), "'id' is not imported", id="id"),
        pytest.param(document({"path_patterns": "/a/"}), "it has no name", id="no-name"),
        pytest.param(
            document({**GOOD, "depends_on": ["demo.Nope"]}),
            r"depends_on: 'demo.Nope' is not an installed model",
            id="unknown-label",
        ),
        pytest.param(
            document({**GOOD, "depends_on": "demo.Author"}),
            "depends_on is a JSON string, not a list of model labels",
            id="depends-on-type",
        ),
        pytest.param(
            document({**GOOD, "depends_on": [7]}), "not a list of model labels", id="label-type"
        ),
        pytest.param(
            document({**GOOD, "object_model": "nope"}),
            "object_model: 'nope' is not an installed model",
            id="object-model",
        ),
        pytest.param(
            document({**GOOD, "object_model": 5}), "object_model is a JSON number", id="object-type"
        ),
        pytest.param(
            document({**GOOD, "priority": "1"}), 'priority is "1"; expected a whole', id="int"
        ),
        pytest.param(
            document({**GOOD, "priority": True}), "expected a whole number", id="bool-int"
        ),
        pytest.param(
            document({**GOOD, "enabled": 1}), "enabled is 1; expected true or false", id="bool"
        ),
        pytest.param(
            document({**GOOD, "notes": None}), "notes is null; expected a value", id="null"
        ),
        pytest.param(
            document({**GOOD, "url_names": 3}), "url_names is 3; expected a string", id="str"
        ),
        pytest.param(document({**GOOD, "max_age": -1}), "max_age: ", id="negative"),
        pytest.param(document({**GOOD, "audience": "friends"}), "audience: ", id="choice"),
        pytest.param(document({**GOOD, "name": ""}), "name: ", id="blank-name"),
        pytest.param(document({**GOOD, "methods": "POST"}), "methods: Methods POST", id="method"),
        pytest.param(
            document({"name": "No pages"}), "url_names: Give at least one", id="no-patterns"
        ),
        pytest.param(
            document({**GOOD, "tag_strength": "strong"}), "tag_strength: A strong tag", id="rule"
        ),
        pytest.param(
            document({**GOOD, "object_model": "demo.Article", "object_field": "title"}),
            "object_field: ",
            id="object-field",
        ),
        pytest.param(document(GOOD, GOOD), "also rule 1's", id="duplicate-names"),
    ],
)
def test_invalid_files_write_nothing(rules, tmp_path, text, message):
    path = tmp_path / "rules.json"
    path.write_text(text, encoding="utf-8")
    count = ConditionalRule.objects.count()
    with pytest.raises(CommandError, match=message) as error:
        run("import", str(path), "--replace")
    assert "nothing was written" in str(error.value)
    assert ConditionalRule.objects.count() == count


def test_a_file_with_several_problems_reports_them_all(rules):
    text = json.dumps(
        {
            "format": FORMAT,
            "version": 1,
            "rules": [
                {**GOOD, "depends_on": ["demo.Nope"], "colour": "red"},
                {"name": "Second", "path_patterns": "/a/", "audience": "friends"},
                {**GOOD},
                {"name": "Third", "path_patterns": "/b/", "enabled": "yes"},
            ],
        }
    )
    before = snapshot()
    with pytest.raises(CommandError) as error:
        run("import", "-", stdin=text)
    message = str(error.value)
    assert "5 problems; nothing was written" in message
    for part in (
        "rule 1 ('Good'): unknown field 'colour'",
        "rule 1 ('Good'): depends_on: 'demo.Nope'",
        "rule 2 ('Second'): audience:",
        "rule 3 ('Good'): the name is also rule 1's",
        "rule 4 ('Third'): enabled is \"yes\"",
    ):
        assert part in message
    assert snapshot() == before


def test_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(CommandError, match=r"Cannot read .*missing\.json"):
        run("import", str(tmp_path / "missing.json"))


def test_an_unwritable_output_is_an_error(rules, tmp_path):
    with pytest.raises(CommandError, match="Cannot write"):
        run("export", "--output", str(tmp_path / "no" / "such" / "dir.json"))


def test_list_prints_one_line_per_rule(rules):
    assert run("list").splitlines() == [
        "Articles | enabled | priority 5 | everyone | name demo:plain-article",
        "Authors | disabled | priority 0 | anonymous | path /plain/authors/, path /plain/writers/",
        "Me | enabled | priority 0 | per_user | path /plain/me/",
    ]


def test_list_of_no_rules():
    assert run("list") == "No conditional rules.\n"


def test_export_to_stdout_is_json_alone(rules):
    err = StringIO()
    out = StringIO()
    call_command("conditional_rules", "export", stdout=out, stderr=err)
    assert json.loads(out.getvalue())["rules"]
    assert "Exported 3 rule(s)" in err.getvalue()


def test_round_trip_of_an_empty_table(tmp_path: Path):
    text = run("export")
    assert json.loads(text)["rules"] == []
    assert run("import", "-", stdin=text) == "Created 0 rules, updated 0.\n"
