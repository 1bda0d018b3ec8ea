"""WSGI entry point (``gunicorn molt_demo.wsgi``)."""

import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "molt_demo.settings")

application = get_wsgi_application()

# Django imports URLconfs at the first request. Importing them here makes a misconfigured
# @molt_offload (an entry the worker does not export) stop the server at boot instead.
get_resolver().url_patterns  # noqa: B018
