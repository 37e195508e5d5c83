"""The scripts that follow a ``401 reauth_required`` read the tenant endpoint's JSON:API
error (``errors[0].code``, ``errors[0].meta.reauth_url``) as they read every other
guarded JSON endpoint's body (``error``, ``reauth_url``): ``stepup-reauth.js``'s
``stepup.fetch``, run in Node with a stand-in window, and the demo's tenant page."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import resources
from typing import Any, Final

import pytest

from support import need

REAUTH_JS = resources.files("stepup.integrations").joinpath("static/stepup-reauth.js")
TENANT_PAGE = resources.files("stepup.demo").joinpath("templates/tenant.html")
PROMPT: Final = "/stepup/reauth?next=%2Fsettings&action=tenant.settings.update"
#: Where stepup.fetch opens the prompt: its done page is where the window comes back.
#: The whole URL on the page's own origin (a path alone, "//host/...", would be another host).
OPENED: Final = (
    "http://localhost/stepup/reauth?next=%2Fstepup%2Freauth%2Fdone&action=tenant.settings.update"
)

#: A stand-in window: the first fetch answers the case's status and body, the second
#: 200; window.open returns a popup that posts "done" with a renewed CSRF token.
HARNESS = r"""
const vm = require("vm");
const fs = require("fs");
const [path, json] = process.argv.slice(-2);
const [source, first] = [fs.readFileSync(path, "utf8"), JSON.parse(json)];
const origin = "http://localhost";
const requests = [], opened = [];
let listener = null;
const popup = {closed: false};
function answer(status, body) {
  const response = {status, ok: status >= 200 && status < 300, json: async () => body,
                    clone: () => response};
  return response;
}
const window = {
  location: {origin, href: origin + "/settings"},
  open: (url) => {
    opened.push(url);
    setTimeout(() => listener({origin, source: popup,
                               data: {type: "stepup:reauth-done", csrfToken: "renewed"}}), 0);
    return popup;
  },
  addEventListener: (type, fn) => { if (type === "message") listener = fn; },
  removeEventListener: () => {},
  setInterval: () => 1,
  clearInterval: () => {},
  fetch: async (input, init) => {
    requests.push({url: input, csrf: init.headers.get("X-CSRF-Token")});
    return requests.length === 1 ? answer(first.status, first.body) : answer(200, {});
  },
};
const document = {currentScript: null, readyState: "complete",
                  getElementById: () => null, querySelector: () => null};
const sandbox = {window, document, URL, URLSearchParams, Headers, Promise, setTimeout};
vm.createContext(sandbox);
vm.runInContext(source, sandbox);
window.stepup.fetch("/stepup/tenants/acme", {method: "PATCH",
  headers: {"Content-Type": "application/vnd.api+json", "X-CSRF-Token": "old"}, body: "{}"})
  .then((response) => {
    console.log(JSON.stringify({status: response.status, opened, requests}));
  })
  .catch((error) => { console.error(error); process.exit(1); });
"""


def _node() -> str:
    node = shutil.which("node")
    need(node is not None, "node is not installed")
    assert node is not None
    return node


def _fetch_after(status: int, body: Any) -> Any:
    """What ``stepup.fetch`` did when the first answer was ``status`` with ``body``."""
    with resources.as_file(REAUTH_JS) as script:
        done = subprocess.run(
            [
                _node(),
                "-e",
                HARNESS,
                "--",
                str(script),
                json.dumps({"status": status, "body": body}),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _jsonapi(code: str, **error: Any) -> dict[str, Any]:
    return {"errors": [{"status": "401", "code": code, "title": "t", **error}]}


ASKING: Final = [
    pytest.param(
        _jsonapi("reauth_required", links={"about": PROMPT}, meta={"reauth_url": PROMPT}),
        id="jsonapi",
    ),
    pytest.param({"error": "reauth_required", "title": "t", "reauth_url": PROMPT}, id="json"),
]

NOT_ASKING: Final = [
    pytest.param(_jsonapi("unauthenticated"), id="jsonapi-signed-out"),
    pytest.param(_jsonapi("reauth_required"), id="jsonapi-no-meta"),
    pytest.param(_jsonapi("reauth_required", meta={"reauth_url": ""}), id="jsonapi-empty-url"),
    pytest.param({"errors": []}, id="jsonapi-no-error"),
    pytest.param({"error": "authentication_required", "title": "t"}, id="json-signed-out"),
    pytest.param({"error": "reauth_required", "title": "t"}, id="json-no-url"),
    pytest.param(None, id="null"),
]


@pytest.mark.parametrize("body", ASKING)
def test_stepup_fetch_reauthenticates_and_retries_on_either_shape(body: Any) -> None:
    done = _fetch_after(401, body)
    assert done["opened"] == [OPENED]
    assert done["status"] == 200
    # Sent again once, with the renewed session's CSRF token.
    assert [request["csrf"] for request in done["requests"]] == ["old", "renewed"]


@pytest.mark.parametrize("body", NOT_ASKING)
def test_stepup_fetch_hands_back_any_other_401(body: Any) -> None:
    done = _fetch_after(401, body)
    assert done["opened"] == []
    assert done["status"] == 401
    assert len(done["requests"]) == 1


# The demo's tenant page ----------------------------------------------------------------

#: Runs the page's reauthUrlOf (its script's function, as shipped) on each body.
PAGE_HARNESS = r"""
const vm = require("vm");
const [source, json] = process.argv.slice(-2);
const sandbox = {};
vm.createContext(sandbox);
vm.runInContext(source, sandbox);
console.log(JSON.stringify(JSON.parse(json).map((body) => sandbox.reauthUrlOf(body))));
"""


def _page_function() -> str:
    page = TENANT_PAGE.read_text(encoding="utf-8")
    found = re.search(r"^function reauthUrlOf\(answer\) \{\n.*?^\}\n", page, re.M | re.S)
    assert found is not None, "the tenant page reads the 401 in reauthUrlOf"
    return found.group(0)


def test_the_tenant_page_follows_either_shape_and_nothing_else() -> None:
    bodies = [p.values[0] for p in [*ASKING, *NOT_ASKING]]
    done = subprocess.run(
        [_node(), "-e", PAGE_HARNESS, "--", _page_function(), json.dumps(bodies)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    urls = json.loads(done.stdout)
    assert urls[: len(ASKING)] == [PROMPT] * len(ASKING)
    # An empty reauth_url: the page would go nowhere useful; it shows the refusal.
    assert urls[len(ASKING) :] == [None] * len(NOT_ASKING)
