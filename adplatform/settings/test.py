"""Test settings: fast password hashing; everything else as in production."""

from .base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEBUG = False
# the writer thread's own connection would escape each test's transaction (its own tests
# switch it on: tests/delivery/test_decision_writer.py)
DELIVERY_DECISION_LOG_GROUPED = False
# the same for the creative-vector replica (loaded synchronously, checked on every search)
# and the live pacing tick (runs on the request that finds it due)
PROFILES_MEMORY_INDEX_BACKGROUND = False
PROFILES_MEMORY_INDEX_TTL_SECONDS = 0.0
DELIVERY_PACING_TICK_BACKGROUND = False
