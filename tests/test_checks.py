"""System checks: each id, and that ``manage.py check`` runs them."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from django_conditional.checks import check_setting_types, check_unknown_settings
from django_conditional.conf import conf


def test_no_messages_by_default():
    assert check_unknown_settings() == []
    assert check_setting_types() == []


def test_w001_unknown_setting(settings):
    settings.CONDITIONAL_DEBUG_HEADERS = True
    [message] = check_unknown_settings()
    assert message.id == "django_conditional.W001"
    assert "CONDITIONAL_DEBUG_HEADERS" in message.msg
    assert message.hint == "Did you mean CONDITIONAL_DEBUG_HEADER?"


def test_e001_wrong_type(settings):
    settings.CONDITIONAL_DEBUG_HEADER = "yes"
    [message] = check_setting_types()
    assert message.id == "django_conditional.E001"
    assert "'yes'" in message.msg


def test_manage_py_check_runs_the_checks(settings):
    settings.CONDITIONAL_DEBUG_HEADER = "yes"
    with pytest.raises(SystemCheckError, match=r"django_conditional\.E001"):
        call_command("check")


def test_conf_reads_cached_settings_and_follows_changes(settings):
    assert conf.debug_header is False
    settings.CONDITIONAL_DEBUG_HEADER = True
    assert conf.debug_header is True
