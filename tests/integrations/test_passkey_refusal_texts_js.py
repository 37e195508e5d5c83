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
#: (navigator.credentials rejects with it), "network" (fetch rejects with a TypeError)
#: or "server" (the begin endpoint answers 403 with a title).
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
