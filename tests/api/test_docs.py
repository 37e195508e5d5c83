"""The examples of docs/step-up-apis.md run as written (Django's needs a project: its
decorator is tested in tests/integrations/django/test_bearer.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api.tokens_support import KEY, sign

DOC = Path(__file__).resolve().parents[2] / "docs" / "step-up-apis.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def _block(starting: str) -> str:
    found = [block for block in BLOCKS if block.startswith(starting)]
    assert len(found) == 1, starting
    return found[0]


def _namespace() -> dict[str, Any]:
    """The levels and policy block, and a validator for the example's issuer whose keys
    are the test's (the doc fetches them over HTTP)."""
    from stepup.adapters.idp.oidc import AccessTokenValidator

    namespace: dict[str, Any] = {"__name__": "__main__"}  # Flask(__name__) finds a root
    exec(_block("from stepup.assurance import"), namespace)  # noqa: S102 (the doc's own code)
    namespace["validator"] = AccessTokenValidator(
        issuer="https://idp.example",
        audience="https://api.example",
        fetch_jwks=lambda: {"keys": [KEY.as_dict(private=False)]},
    )
    return namespace


def test_the_transaction_example_runs() -> None:
    exec(_block("from stepup.adapters.storage.memory import MemoryStore\nfrom stepup.policy"), {})  # noqa: S102


def test_the_validator_example_builds() -> None:
    namespace: dict[str, Any] = {}
    code = _block("import httpx\nfrom stepup.adapters.idp.oidc import AccessTokenValidator")
    exec(code, namespace)  # noqa: S102
    assert namespace["validator"].audience == "https://api.example.com"


def test_the_fastapi_example_guards_the_route() -> None:
    import time

    namespace = _namespace()
    exec(_block("from fastapi import"), namespace)  # noqa: S102
    now = int(time.time())
    good = sign(iat=now, exp=now + 600, auth_time=now - 5, acr="urn:example:mfa")
    low = sign(iat=now, exp=now + 600, auth_time=now - 5, acr="urn:example:pwd", amr=["pwd"])
    with TestClient(namespace["app"]) as client:
        ok = client.delete("/workspaces/prod", headers={"Authorization": f"Bearer {good}"})
        assert ok.json() == {"deleted": "prod", "by": "alice"}
        refused = client.delete("/workspaces/prod", headers={"Authorization": f"Bearer {low}"})
        assert 'acr_values="urn:example:mfa urn:example:phr"' in refused.headers["www-authenticate"]


def test_the_flask_and_starlette_examples_guard_the_route() -> None:
    import time

    from starlette.testclient import TestClient as StarletteClient

    now = int(time.time())
    good = sign(iat=now, exp=now + 600, auth_time=now - 5, acr="urn:example:mfa")
    namespace = _namespace()
    exec(_block("from flask import"), namespace)  # noqa: S102
    answer = (
        namespace["app"]
        .test_client()
        .delete("/workspaces/prod", headers={"Authorization": f"Bearer {good}"})
    )
    assert answer.json == {"deleted": "prod", "by": "alice"}
    namespace = _namespace()
    exec(_block("from starlette.applications import"), namespace)  # noqa: S102
    with StarletteClient(namespace["app"]) as client:
        response = client.delete("/workspaces/prod", headers={"Authorization": f"Bearer {good}"})
        assert response.json() == {"deleted": "prod", "by": "alice"}
        assert client.delete("/workspaces/prod").status_code == 401
