"""``depends_on`` entries resolved to models, and errors that name the view and the fix."""

from __future__ import annotations

import pytest

from django_conditional.dependencies import DependencyError, ViewConfig, resolve_models
from tests.testapp.models import Article, Author


def test_classes_and_labels_resolve_in_order():
    assert resolve_models([Author, "testapp.Article", "testapp.author"], "v") == (
        Author,
        Article,
        Author,
    )


@pytest.mark.parametrize(
    ("reference", "message", "hint"),
    [
        pytest.param(
            "testapp.Athor",
            "app.views.page: depends_on names 'testapp.Athor', which is not an installed "
            "model (App 'testapp' doesn't have a 'Athor' model.).",
            "Did you mean 'testapp.Author'? Use 'app_label.ModelName' of an installed model, "
            "or the model class itself.",
            id="typo-in-model",
        ),
        pytest.param(
            "tesapp.Author",
            "app.views.page: depends_on names 'tesapp.Author', which is not an installed "
            "model (No installed app with label 'tesapp'.).",
            "Did you mean 'testapp.Author'? Use 'app_label.ModelName' of an installed model, "
            "or the model class itself.",
            id="typo-in-app",
        ),
        pytest.param(
            "Author",
            "app.views.page: depends_on names 'Author', which is not an installed model "
            "(no app label).",
            "Did you mean 'demo.Author' or 'testapp.Author'? Use 'app_label.ModelName' of an "
            "installed model, or the model class itself.",
            id="no-app-label",
        ),
        pytest.param(
            42,
            "app.views.page: depends_on holds 42, which is neither a model class nor an "
            "'app_label.ModelName' string.",
            "List model classes or 'app_label.ModelName' strings in depends_on.",
            id="not-a-model",
        ),
    ],
)
def test_errors_name_the_view_the_entry_and_the_fix(reference, message, hint):
    with pytest.raises(DependencyError) as raised:
        resolve_models([Author, reference], "app.views.page")
    assert (raised.value.message, raised.value.hint) == (message, hint)
    assert str(raised.value) == f"{message} {hint}"


@pytest.mark.parametrize(
    ("references", "shown"),
    [
        pytest.param(Author, "Author", id="a-model"),
        pytest.param("testapp.Author", "'testapp.Author'", id="a-label"),
    ],
)
def test_a_lone_model_where_a_list_belongs(references, shown):
    with pytest.raises(DependencyError) as raised:
        resolve_models(references, "app.views.Page")
    assert (raised.value.message, raised.value.hint) == (
        f"app.views.Page: depends_on is {shown} alone; expected a list of models.",
        f"Write depends_on = [{shown}].",
    )


def test_view_config_resolves_its_depends_on():
    assert ViewConfig("app.views.page", ("testapp.Author",)).resolve() == (Author,)
