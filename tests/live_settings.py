"""The demo's settings, with the live write tests' controls mounted beside its pages."""

from testproject.settings import *  # noqa: F403

ROOT_URLCONF = "tests.live_urls"
