"""Test settings: fast password hashing; everything else as in production."""

from .base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEBUG = False
# the writer thread's own connection would escape each test's transaction (its own tests
# switch it on: tests/delivery/test_decision_writer.py)
DELIVERY_DECISION_LOG_GROUPED = False
