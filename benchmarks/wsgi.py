"""The WSGI application gunicorn serves in the loopback measurements."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"

application = get_wsgi_application()
