"""The end-to-end tests use the terminal tests' fixtures (kubesim as the cluster, personas)."""

from tests.sessions.conftest import term_kube, term_users  # noqa: F401
