"""Rules made through the ORM for tests, models given by label, as the admin would make them."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib.contenttypes.models import ContentType

from django_conditional.models import ConditionalRule


def make_rule(
    name: str,
    *,
    depends_on: tuple[str, ...] = (),
    object_model: str | None = None,
    **fields: Any,
) -> ConditionalRule:
    """A rule named ``name`` depending on the models labelled ``depends_on``."""
    if object_model is not None:
        fields["object_model"] = ContentType.objects.get_for_model(apps.get_model(object_model))
    rule = ConditionalRule.objects.create(name=name, **fields)
    rule.depends_on.set(
        ContentType.objects.get_for_model(apps.get_model(label)) for label in depends_on
    )
    return rule
