"""App config for the demo blog that exercises django_conditional end to end."""

from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "testproject.demo"
    label = "demo"
    verbose_name = "Demo blog"
    default_auto_field = "django.db.models.BigAutoField"
