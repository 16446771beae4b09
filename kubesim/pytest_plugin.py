"""pytest fixtures: `kubesim_cluster` (fresh per test) and `kubesim_session_cluster` (shared)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kubesim.testing import RunningCluster, run_cluster


@pytest.fixture
def kubesim_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with run_cluster(tmp_path_factory.mktemp("kubesim")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def kubesim_session_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """Shared by every test of the session: don't leave faults behind, use unique names."""
    with run_cluster(tmp_path_factory.mktemp("kubesim-session")) as cluster:
        yield cluster
