"""``stepup-passkeys.js`` on stepup's pages, run in Node with a stand-in browser: the
text a form shows when the ceremony fails is one of the page's translated texts (its
``data-*`` attributes) chosen by the cause, or the server's own title; never the
browser's message, which is in the browser's words and language. The causes a real
Chromium gives (the same authenticator twice, a wrong address) are driven in
test_passkey_refusals_browser.py; here also those it cannot easily give."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.passkey_js_support import run_passkeys_js

#: The attributes the pages put on a passkey form (the texts stand in for translations).
PAGE = {
    "data-unsupported": "unsupported text",
    "data-cancelled": "cancelled text",
    "data-already-registered": "already registered text",
    "data-wrong-address": "wrong address text",
    "data-failed": "failed text",
}
#: A page made before the texts for each cause (an application's own copy of it).
OLD_PAGE = {"data-unsupported": "unsupported text", "data-cancelled": "cancelled text"}

#: (kind, what fails, attributes, the text shown). What fails: a DOMException's name
#: (navigator.credentials rejects with it), "network" (fetch rejects with a TypeError),
#: "server" (the begin endpoint answers 403 with a title), or the begin endpoint's
#: answer is not stepup's JSON error: "proxy" (a 502 page that is not JSON),
#: "gateway" (a 504 whose JSON is the gateway's own) or "untitled" (an error, no title).
CASES: list[tuple[str, str, dict[str, str], str]] = [
    ("register", "NotAllowedError", PAGE, "cancelled text"),
    ("authenticate", "AbortError", PAGE, "cancelled text"),
    ("register", "InvalidStateError", PAGE, "already registered text"),
    ("authenticate", "InvalidStateError", PAGE, "failed text"),  # not about registering
    ("register", "SecurityError", PAGE, "wrong address text"),
    ("authenticate", "SecurityError", PAGE, "wrong address text"),
    ("register", "NotSupportedError", PAGE, "failed text"),
    ("authenticate", "UnknownError", PAGE, "failed text"),
    ("register", "ConstraintError", PAGE, "failed text"),
    ("register", "network", PAGE, "failed text"),
    ("authenticate", "server", PAGE, "Der Server sagt nein."),
    ("register", "proxy", PAGE, "failed text"),
    ("authenticate", "proxy", PAGE, "failed text"),
    ("authenticate", "gateway", PAGE, "failed text"),
    ("register", "untitled", PAGE, "failed text"),
    ("register", "proxy", OLD_PAGE, "unsupported text"),
    ("register", "SecurityError", OLD_PAGE, "unsupported text"),
    ("register", "InvalidStateError", OLD_PAGE, "unsupported text"),
    (
        "register",
        "NotSupportedError",
        {},
        "This browser or authenticator cannot use passkeys here.",
    ),
]

HARNESS = r"""
const vm = require("vm");
const fs = require("fs");
const [path, json] = process.argv.slice(-2);
const [source, cases] = [fs.readFileSync(path, "utf8"), JSON.parse(json)];
const BROWSER_SAYS = "The browser's own English message.";
const forms = cases.map(([kind, fails, attributes], index) => {
  const box = {textContent: "", hidden: true};
  const attrs = Object.assign({}, attributes, {
    "data-stepup-passkey": kind, "data-begin-url": "/begin/" + index});
  return {
    box, handlers: {},
    getAttribute: (name) => (name in attrs ? attrs[name] : null),
    addEventListener(type, handler) { this.handlers[type] = handler; },
    querySelector: (selector) => (selector === "[data-stepup-passkey-error]" ? box : null),
    querySelectorAll: () => [],
  };
});
function refuse(options) {
  const [, fails] = cases[options.publicKey.case];
  return Promise.reject(new DOMException(BROWSER_SAYS, fails));
}
const window = {PublicKeyCredential: function () {}, location: {href: "http://localhost/"}};
const sandbox = {
  window, DOMException, HTMLFormElement: {prototype: {submit() {}}},
  atob: (t) => Buffer.from(t, "base64").toString("binary"),
  btoa: (t) => Buffer.from(t, "binary").toString("base64"),
  document: {readyState: "complete", querySelectorAll: () => forms, activeElement: null},
  navigator: {credentials: {create: refuse, get: refuse}},
  fetch: async (url) => {
    const index = Number(url.split("/").pop());
    const fails = cases[index][1];
    if (fails === "network") throw new TypeError("Failed to fetch");
    if (fails === "server") {
      return {ok: false, status: 403,
              json: async () => ({error: "no", title: "Der Server sagt nein."})};
    }
    if (fails === "proxy") {
      return {ok: false, status: 502, json: async () => { throw new SyntaxError("<html>"); }};
    }
    if (fails === "gateway") {
      return {ok: false, status: 504, json: async () => ({message: "Gateway Timeout"})};
    }
    if (fails === "untitled") return {ok: false, status: 403, json: async () => ({error: "csrf"})};
    const publicKey = {case: index, challenge: "AAAA", user: {id: "AQID", name: "a"},
                       allowCredentials: [], excludeCredentials: []};
    return {ok: true, status: 200, json: async () => ({publicKey})};
  },
};
vm.createContext(sandbox);
vm.runInContext(source, sandbox);
(async () => {
  for (const form of forms) form.handlers.submit({preventDefault() {}});
  await new Promise((resolve) => setTimeout(resolve, 50));
  console.log(JSON.stringify(forms.map((f) => ({text: f.box.textContent, hidden: f.box.hidden}))));
})().catch((error) => { console.error(error); process.exit(1); });
"""


@pytest.fixture(scope="module")
def shown() -> list[Any]:
    seen: list[Any] = run_passkeys_js(HARNESS, CASES)
    return seen


@pytest.mark.parametrize(("index", "case"), list(enumerate(CASES)))
def test_the_form_says_what_went_wrong_in_the_pages_words(
    shown: list[Any], index: int, case: tuple[str, str, dict[str, str], str]
) -> None:
    _kind, _fails, _attributes, text = case
    assert shown[index] == {"text": text, "hidden": False}


def test_the_browsers_own_message_is_never_shown(shown: list[Any]) -> None:
    texts = [seen["text"] for seen in shown]
    assert "The browser's own English message." not in texts
    assert "Failed to fetch" not in texts
    assert not [text for text in texts if text.startswith("stepup: request failed")]


#: A single-page app's call: the begin endpoint answers with each of these in turn;
#: what register rejected with comes back. The body is JSON text, or not JSON at all.
API_HARNESS = r"""
const vm = require("vm");
const fs = require("fs");
const [path, json] = process.argv.slice(-2);
const [source, answers] = [fs.readFileSync(path, "utf8"), JSON.parse(json)];
const window = {};
const sandbox = {
  window, document: {readyState: "complete", querySelectorAll: () => []},
  fetch: async (url) => {
    const [status, text] = answers[Number(url.split("/").pop())];
    return {ok: false, status, json: async () => JSON.parse(text)};
  },
};
vm.createContext(sandbox);
vm.runInContext(source, sandbox);
(async () => {
  const seen = [];
  for (let index = 0; index < answers.length; index++) {
    const error = await window.stepupPasskeys
      .register({beginUrl: "/begin/" + index, csrfToken: "t"})
      .then(() => null, (error) => error);
    seen.push({message: error.message, status: error.status, has: "body" in error,
               body: error.body === undefined ? null : error.body});
  }
  console.log(JSON.stringify(seen));
})().catch((error) => { console.error(error); process.exit(1); });
"""


def test_only_the_endpoints_json_error_is_the_rejections_body() -> None:
    refused = {"error": "csrf", "title": "Lade die Seite neu."}
    answers = [
        (403, '{"error": "csrf", "title": "Lade die Seite neu."}'),
        (502, "<html><body>502 Bad Gateway</body></html>"),
        (500, ""),
        (504, '{"message": "Gateway Timeout"}'),
        (503, "null"),
    ]
    seen = run_passkeys_js(API_HARNESS, answers)
    assert seen[0] == {
        "message": "Lade die Seite neu.",
        "status": 403,
        "has": True,
        "body": refused,
    }
    for (status, _text), error in zip(answers[1:], seen[1:], strict=True):
        assert error == {
            "message": f"stepup: request failed ({status})",
            "status": status,
            "has": False,
            "body": None,
        }
