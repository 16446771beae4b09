"""Single sign-on fixtures: a real OpenID provider (node-oidc-provider) and a rogue one, each
wired into the portal's settings for the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sso.idp import CLIENT_ID, CLIENT_SECRET, RealIdP, RogueIdP

# Django's test client talks to the portal as http://testserver.
TEST_CALLBACK = "http://testserver/oidc/callback/"


def _configure(settings: Any, issuer: str) -> None:
    from portal.sso import discovery

    settings.OIDC_ISSUER = issuer
    settings.OIDC_CLIENT_ID = settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.AUTHENTICATION_BACKENDS = ["portal.sso.local.LocalPasswordBackend", "portal.sso.backend.SsoBackend"]
    settings.OIDC_PROVIDER_NAME = "Test IdP"
    discovery.forget()


@pytest.fixture(scope="session")
def real_idp_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealIdP]:
    idp = RealIdP(Path(tmp_path_factory.mktemp("idp")), [TEST_CALLBACK]).start()
    yield idp
    idp.stop()


@pytest.fixture
def real_idp(real_idp_process: RealIdP, settings: Any, db: Any) -> Iterator[RealIdP]:
    """The real provider, with no accounts yet, as the portal's OIDC_ISSUER."""
    from portal.sso import discovery

    real_idp_process.accounts = {}
    real_idp_process.save_accounts()
    _configure(settings, real_idp_process.issuer)
    yield real_idp_process
    discovery.forget()


@pytest.fixture
def rogue_idp(settings: Any, db: Any) -> Iterator[RogueIdP]:
    from portal.sso import discovery

    idp = RogueIdP().start()
    _configure(settings, idp.issuer)
    yield idp
    idp.stop()
    discovery.forget()
