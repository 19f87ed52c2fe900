"""The modules a settings module or an early ``urls.py`` imports work before ``django.setup()``.

Django's own ``django.views.decorators.http`` can be imported, and applied,
with no settings configured at all; so can ours. Run in a fresh interpreter,
since this one has long been set up.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys

    import django_conditional.decorators as decorators
    import django_conditional.views as views
    from django.apps import apps

    assert not apps.ready

    @decorators.conditional(depends_on=["testapp.Author"], public=True)
    def page(request): ...

    @decorators.condition(etag_func=lambda request: "x")
    def other(request): ...

    class Page(views.ConditionalTemplateMixin):
        depends_on = ["testapp.Author"]

    loaded = sorted(name for name in sys.modules if name.startswith("django_conditional."))
    assert "django_conditional.models" not in loaded, loaded
    print("ok")
    """
)


@pytest.mark.parametrize(
    "environment",
    [
        pytest.param({}, id="no-settings"),
        pytest.param({"DJANGO_SETTINGS_MODULE": "tests.settings"}, id="settings-not-set-up"),
    ],
)
def test_decorators_and_views_import_and_apply_before_setup(environment):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **environment},
        check=False,
    )
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "ok", "")
