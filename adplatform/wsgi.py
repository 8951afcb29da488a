"""WSGI entrypoint (gunicorn adplatform.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from adplatform.gctuning import tune_gc_for_server

# one request = one thread; BLAS thread pools per request (numpy's ~1 ms matrix-vector
# products on /rank) only contend with the other request threads on the same cores. Set
# before Django loads the apps (and numpy with them).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "adplatform.settings.local")
application = get_wsgi_application()
tune_gc_for_server()
