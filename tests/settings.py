"""Settings for the test suite: the real settings, with the environment the tests need.

DATABASE_URL and REDIS_URL pass through, so `.ci/run` runs the same suite on PostgreSQL and
Redis; without them the suite uses SQLite and the in-memory channel layer.
"""

import os

os.environ.setdefault("EPHEMERA_DEMO", "1")
os.environ.setdefault("EPHEMERA_VAR_DIR", os.path.join(os.path.dirname(__file__), "..", "var", "test"))

from portal.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
