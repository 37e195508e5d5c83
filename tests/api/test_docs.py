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
    for name in ("validator", "async_validator"):
        namespace[name] = AccessTokenValidator(
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
    exec(_block("from stepup.adapters.idp.oidc import async_http_jwks_fetcher"), namespace)  # noqa: S102
    assert namespace["async_validator"].audience == "https://api.example.com"


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
        assert 'acr_values="urn:example:phr urn:example:mfa"' in refused.headers["www-authenticate"]


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


# "In the ready-made pages": the guards of each framework, driven through the pages ------


def _pages_namespace() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(_block("from stepup.assurance import"), namespace)  # noqa: S102 (LEVELS)
    exec(_block("# stepup_rules.py"), namespace)  # noqa: S102 (PAGES_POLICY, workspace)
    return namespace


def _with_billing_export(policy: Any) -> Any:
    """The test apps also guard billing.export (tests/integrations/*/..._support.py)."""
    from dataclasses import replace

    from stepup.policy import SENSITIVE

    return policy.extend({"billing.export": replace(SENSITIVE, second_factor=True)})


def test_the_flask_pages_example_confirms_one_transaction_once() -> None:
    from integrations.flask.flask_support import make_app, set_flag

    namespace = _pages_namespace()

    def routes(app: Any, stepup: Any) -> None:
        code = _block('@app.post("/workspaces/<name>/destroy")')
        exec(code, {**namespace, "app": app, "stepup": stepup})  # noqa: S102

    test_app = make_app(policy=_with_billing_export(namespace["PAGES_POLICY"]), setup=routes)
    alice = test_app.client()
    alice.login("alice")
    assert set_flag(alice).status_code == 200
    token = alice.csrf()
    refused = alice.post("/workspaces/prod-eu/destroy", data={"csrf_token": token})
    location = refused.headers["Location"]
    assert "Delete workspace prod-eu" in alice.get(location).get_data(as_text=True)
    assert alice.reauth(location, "correct horse").status_code == 200  # the form, resumed
    destroy = {"csrf_token": alice.csrf()}
    assert alice.post("/workspaces/prod-us/destroy", data=destroy).status_code == 303
    assert alice.post("/workspaces/prod-eu/destroy", data=destroy).status_code == 200
    assert alice.post("/workspaces/prod-eu/destroy", data=destroy).status_code == 303
    assert alice.post("/invoices/7/pay", data=destroy).status_code == 303  # mfa: a code


def _starlette_journey(test_app: Any) -> None:
    from integrations.starlette.starlette_support import PASSWORDS

    alice = test_app.browser()
    try:
        assert alice.login("alice").status_code == 303
        assert alice.patch_tenant(True).status_code == 200
        location = alice.post("/workspaces/prod-eu/destroy").headers["location"]
        assert "Delete workspace prod-eu" in alice.get(location).text
        assert alice.reauth(location, PASSWORDS["alice"]).status_code == 303
        assert alice.post("/workspaces/prod-us/destroy").status_code == 303
        assert alice.post("/workspaces/prod-eu/destroy").status_code == 200
        assert alice.post("/workspaces/prod-eu/destroy").status_code == 303
        assert alice.post("/invoices/7/pay").status_code == 303  # mfa: a code too
    finally:
        alice.close()


def test_the_starlette_pages_example_confirms_one_transaction_once() -> None:
    from integrations.starlette.starlette_support import make_app
    from stepup.adapters.storage.memory import MemoryStore
    from stepup.testing import SettableClock

    namespace = _pages_namespace()

    def routes(stepup: Any) -> list[Any]:
        local = {**namespace, "stepup": stepup}
        exec(_block("from starlette.requests import Request"), local)  # noqa: S102
        return list(local["routes"])

    test_app = make_app(
        clock=SettableClock(),
        store=MemoryStore(),
        policy=namespace["PAGES_POLICY"],
        extra_routes=routes,
    )
    _starlette_journey(test_app)


def test_the_fastapi_pages_example_confirms_one_transaction_once() -> None:
    from fastapi import FastAPI

    from integrations.starlette.starlette_support import make_app
    from stepup.adapters.storage.memory import MemoryStore
    from stepup.integrations.fastapi import Stepup
    from stepup.testing import SettableClock

    namespace = _pages_namespace()
    test_app = make_app(
        clock=SettableClock(),
        store=MemoryStore(),
        policy=namespace["PAGES_POLICY"],
        stepup_class=Stepup,
        app_class=FastAPI,
    )
    local = {**namespace, "app": test_app.app, "stepup": test_app.stepup}
    exec(_block("# two more endpoints of the guide's app"), local)  # noqa: S102
    _starlette_journey(test_app)
