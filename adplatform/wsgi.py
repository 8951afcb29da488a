"""WSGI entrypoint (gunicorn adplatform.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from adplatform.gctuning import tune_gc_for_server

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "adplatform.settings.local")
application = get_wsgi_application()
tune_gc_for_server()
