"""Test settings: the demo project's, with a throwaway database and fast hashing."""

from testproject.settings import *  # noqa: F403
from testproject.settings import DATABASES, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # An in-memory database per test run; never the demo's own file.
    DATABASES["default"]["NAME"] = ":memory:"

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEBUG = False
