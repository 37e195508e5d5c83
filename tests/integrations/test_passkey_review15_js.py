"""Passkey review 15, ``stepup-passkeys.js`` run in Node with a stand-in browser: an
empty user handle is sent as none (null, not ""), and ``authenticate`` / ``signIn`` hand
the renewed session's CSRF token to ``onCsrfToken``, as the popup flow of
``stepup-reauth.js`` does."""

from __future__ import annotations

from typing import Any

from integrations.passkey_js_support import run_passkeys_js

#: A stand-in browser: the endpoints answer from ANSWERS (by path), requests are kept,
#: navigator.credentials.get resolves with a credential whose user handle is empty.
HARNESS = r"""
const vm = require("vm");
const fs = require("fs");
const [path, json] = process.argv.slice(-2);
const [source, answers] = [fs.readFileSync(path, "utf8"), JSON.parse(json)];
const requests = [];
function buffer(bytes) { return new Uint8Array(bytes).buffer; }
const credential = {
  id: "AQID", rawId: buffer([1, 2, 3]), type: "public-key", authenticatorAttachment: null,
  getClientExtensionResults: () => ({}),
  response: {clientDataJSON: buffer([123, 125]), authenticatorData: buffer([0]),
             signature: buffer([1]), userHandle: buffer([])},
};
const withToJSON = Object.assign({}, credential, {toJSON: () => ({
  id: "AQID", rawId: "AQID", type: "public-key", clientExtensionResults: {},
  response: {clientDataJSON: "e30", authenticatorData: "AA", signature: "AQ", userHandle: ""}})});
const window = {PublicKeyCredential: function () {}, location: {href: "http://localhost/"}};
const sandbox = {
  window, atob: (t) => Buffer.from(t, "base64").toString("binary"),
  btoa: (t) => Buffer.from(t, "binary").toString("base64"),
  document: {readyState: "complete", querySelectorAll: () => []},
  navigator: {credentials: {get: async () => credential}},
  fetch: async (url, init) => {
    requests.push({url, headers: init.headers, body: JSON.parse(init.body)});
    const answer = answers[url];
    return {ok: answer.status === 200, status: answer.status, json: async () => answer.body};
  },
};
vm.createContext(sandbox);
vm.runInContext(source, sandbox);
const api = window.stepupPasskeys;
(async () => {
  const tokens = [];
  const options = {prefix: "/stepup", action: "passkey.add", csrfToken: "old",
                   onCsrfToken: (token) => tokens.push(token)};
  const authenticated = await api.authenticate(options);
  const signedIn = await api.signIn({prefix: "/stepup", csrfToken: "old",
                                     onCsrfToken: (token) => tokens.push(token)});
  const without = await api.authenticate({prefix: "/stepup", action: "x", csrfToken: "old"});
  console.log(JSON.stringify({
    tokens, authenticated, signedIn, without, requests,
    fallback: api.credentialJSON(credential).response.userHandle,
    native: api.credentialJSON(withToJSON).response.userHandle,
  }));
})().catch((error) => { console.error(error); process.exit(1); });
"""

OPTIONS = {
    "publicKey": {"challenge": "AAAA", "allowCredentials": [{"id": "AQID", "type": "public-key"}]}
}
ANSWERS = {
    "/stepup/reauth/passkey/begin": {"status": 200, "body": OPTIONS},
    "/stepup/reauth/passkey/finish": {
        "status": 200,
        "body": {"ok": True, "next": "/", "csrf_token": "renewed"},
    },
    "/stepup/2fa/verify/passkey/begin": {"status": 200, "body": OPTIONS},
    "/stepup/2fa/verify/passkey/finish": {
        "status": 200,
        "body": {"ok": True, "next": "/home", "csrf_token": "signed-in"},
    },
}


def _run() -> Any:
    return run_passkeys_js(HARNESS, ANSWERS)


def test_an_empty_user_handle_is_sent_as_none() -> None:
    seen = _run()
    assert seen["fallback"] is None  # built from the ArrayBuffers
    assert seen["native"] is None  # toJSON's "" too
    finishes = [r for r in seen["requests"] if r["url"].endswith("/finish")]
    assert finishes
    assert all(r["body"]["credential"]["response"]["userHandle"] is None for r in finishes)


def test_the_renewed_csrf_token_is_handed_to_the_app() -> None:
    seen = _run()
    assert seen["tokens"] == ["renewed", "signed-in"]
    assert seen["authenticated"]["csrf_token"] == "renewed"  # still in the answer
    assert seen["signedIn"]["next"] == "/home"
    assert seen["without"]["ok"] is True  # no callback: nothing breaks
