/*
 * stepup-passkeys.js: add a passkey and confirm it is you with one.
 * No build step, no dependencies. Served by each integration under its prefix
 * (Flask /stepup/stepup-passkeys.js, Django <include path>/stepup-passkeys.js,
 * Starlette <prefix>/stepup-passkeys.js). See docs/passkeys.md.
 *
 * On stepup's own pages it wires itself to the forms marked data-stepup-passkey
 * ("register" or "authenticate"): it asks the form's data-begin-url for options,
 * calls navigator.credentials.create/get, puts the browser's answer (JSON) in the
 * form's "credential" field and submits the form. The pages render those forms' submit
 * buttons disabled (without this script the form could only send an empty answer);
 * wiring a form enables them, and focuses one marked autofocus.
 *
 * Single-page apps call it directly; every call sends the CSRF token as X-CSRF-Token:
 *
 *   await stepupPasskeys.register({prefix: "/stepup", name: "Laptop", csrfToken});
 *   await stepupPasskeys.authenticate({prefix: "/stepup", action: "api_key.read", csrfToken});
 *   await stepupPasskeys.signIn({prefix: "/stepup", csrfToken}); // the second factor at sign-in
 *
 * Both resolve with the endpoint's JSON ({"ok": true, ...}) and reject with an Error
 * whose .body is the endpoint's JSON error ({"error": ..., "title": ...}); an answer
 * that is not one (a proxy's 502 page, an HTML 500) rejects with no .body, and
 * .status says what came back.
 *
 * authenticate and signIn renew the session, and with it the CSRF token: the answer
 * carries the new one ("csrf_token"), and args.onCsrfToken(token) is called with it,
 * as stepup-reauth.js's popup flow does, so the app's next request sends it:
 *
 *   await stepupPasskeys.authenticate({prefix: "/stepup", action: "passkey.add",
 *     csrfToken, onCsrfToken: function (token) { csrfToken = token; }});
 */
(function () {
  "use strict";

  // base64url <-> ArrayBuffer --------------------------------------------------------

  function toBuffer(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      var copy = Object.assign({}, item);
      copy.id = toBuffer(item.id);
      return copy;
    });
  }

  // The JSON options the server sends, as the objects the browser takes.
  function creationOptions(json) {
    var PKC = window.PublicKeyCredential;
    if (PKC && typeof PKC.parseCreationOptionsFromJSON === "function") {
      return PKC.parseCreationOptionsFromJSON(json);
    }
    var options = Object.assign({}, json);
    options.challenge = toBuffer(json.challenge);
    options.user = Object.assign({}, json.user, {id: toBuffer(json.user.id)});
    options.excludeCredentials = descriptors(json.excludeCredentials);
    return options;
  }

  function requestOptions(json) {
    var PKC = window.PublicKeyCredential;
    if (PKC && typeof PKC.parseRequestOptionsFromJSON === "function") {
      return PKC.parseRequestOptionsFromJSON(json);
    }
    var options = Object.assign({}, json);
    options.challenge = toBuffer(json.challenge);
    options.allowCredentials = descriptors(json.allowCredentials);
    return options;
  }

  // An empty user handle is none (WebAuthn: null when the authenticator returned an
  // empty one); sent as "", the server would read a handle that names nobody.
  function withoutEmptyHandle(json) {
    if (json && json.response && json.response.userHandle === "") {
      json.response.userHandle = null;
    }
    return json;
  }

  // The browser's answer as the JSON the server reads (PublicKeyCredential.toJSON()).
  function credentialJSON(credential) {
    if (typeof credential.toJSON === "function") {
      try {
        return withoutEmptyHandle(credential.toJSON());
      } catch (ignored) {
        // some browsers have toJSON but fail on extension results: build it ourselves
      }
    }
    var response = credential.response;
    var json = {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults
        ? credential.getClientExtensionResults()
        : {},
      response: {clientDataJSON: toBase64url(response.clientDataJSON)}
    };
    if (response.attestationObject) {
      json.response.attestationObject = toBase64url(response.attestationObject);
      json.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      json.response.authenticatorData = toBase64url(response.authenticatorData);
      json.response.signature = toBase64url(response.signature);
      var handle = response.userHandle;
      json.response.userHandle = handle && handle.byteLength ? toBase64url(handle) : null;
    }
    return json;
  }

  // requests -------------------------------------------------------------------------

  function post(url, body, csrfToken) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRF-Token": csrfToken || "",
        "X-CSRFToken": csrfToken || "" // Django's header name
      },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () {
        return {};
      }).then(function (json) {
        if (response.ok) {
          return json;
        }
        // Only the endpoint's own JSON error ({"error": ..., "title": ...}) is its
        // refusal; anything else (a proxy's 502 page, an HTML 500) is a failure the
        // page words itself, so the error carries no body.
        var refused = json && typeof json.error === "string" ? json : null;
        var title = refused && typeof refused.title === "string" ? refused.title : "";
        var error = new Error(title || "stepup: request failed (" + response.status + ")");
        error.status = response.status;
        if (refused) {
          error.body = refused;
        }
        throw error;
      });
    });
  }

  function createCredential(options) {
    return navigator.credentials.create({publicKey: creationOptions(options.publicKey)});
  }

  function getCredential(options) {
    return navigator.credentials.get({publicKey: requestOptions(options.publicKey)});
  }

  function register(args) {
    var prefix = args.prefix || "/stepup";
    return post(args.beginUrl || prefix + "/passkeys/register/begin", {}, args.csrfToken)
      .then(createCredential)
      .then(function (credential) {
        return post(
          args.finishUrl || prefix + "/passkeys/register/finish",
          {credential: credentialJSON(credential), name: args.name || ""},
          args.csrfToken
        );
      });
  }

  // Hand the renewed session's CSRF token (the answer's csrf_token) to the app.
  function handOver(args) {
    return function (json) {
      var token = json && json.csrf_token;
      if (token && typeof args.onCsrfToken === "function") {
        args.onCsrfToken(token);
      }
      return json;
    };
  }

  function authenticate(args) {
    var prefix = args.prefix || "/stepup";
    var action = args.action || "";
    var transaction = args.transaction || "";  // a transaction-bound action's digest
    var begin = {action: action, transaction: transaction};
    return post(args.beginUrl || prefix + "/reauth/passkey/begin", begin, args.csrfToken)
      .then(getCredential)
      .then(function (credential) {
        return post(
          args.finishUrl || prefix + "/reauth/passkey/finish",
          {
            credential: credentialJSON(credential),
            action: action,
            transaction: transaction,
            next: args.next || ""
          },
          args.csrfToken
        );
      })
      .then(handOver(args));
  }

  // The second factor of the sign-in waiting in this session: resolves with
  // {"ok": true, "next": ...} once the user is signed in.
  function signIn(args) {
    var prefix = args.prefix || "/stepup";
    return post(args.beginUrl || prefix + "/2fa/verify/passkey/begin", {}, args.csrfToken)
      .then(getCredential)
      .then(function (credential) {
        return post(
          args.finishUrl || prefix + "/2fa/verify/passkey/finish",
          {credential: credentialJSON(credential)},
          args.csrfToken
        );
      })
      .then(handOver(args));
  }

  // stepup's own pages -----------------------------------------------------------------

  // Only ever follow a link to this site (the re-authentication page).
  function sameOrigin(url) {
    try {
      return new URL(url, window.location.href).origin === window.location.origin;
    } catch (ignored) {
      return false;
    }
  }

  function showError(form, text) {
    var box = form.querySelector("[data-stepup-passkey-error]");
    if (box) {
      box.textContent = text;
      box.hidden = false;
    }
  }

  // The text for a failed ceremony. A refusal by the server (error.body) carries its
  // own translated title. Anything else (a proxy's error page, a lost connection, the
  // browser, whose message is in its own words and language) gets the page's
  // translated texts (data-* attributes on the form), which say what the person can do.
  function refusal(form, kind, error) {
    if (error && error.body && typeof error.body.title === "string" && error.body.title) {
      return error.body.title;
    }
    var name = error && error.name;
    var text = null;
    if (name === "NotAllowedError" || name === "AbortError") {
      text = form.getAttribute("data-cancelled"); // cancelled, timed out, or refused
    } else if (name === "InvalidStateError" && kind === "register") {
      text = form.getAttribute("data-already-registered"); // excludeCredentials matched
    } else if (name === "SecurityError") {
      text = form.getAttribute("data-wrong-address"); // the origin does not fit the RP id
    }
    // NotSupportedError (no algorithm in common) and anything else.
    return (
      text ||
      form.getAttribute("data-failed") ||
      form.getAttribute("data-unsupported") ||
      "This browser or authenticator cannot use passkeys here."
    );
  }

  // The form's submit buttons, disabled by the page until this script runs.
  function enable(form) {
    var buttons = form.querySelectorAll("button[type=submit], button:not([type])");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].disabled = false;
      var unfocused = !document.activeElement || document.activeElement === document.body;
      if (buttons[i].hasAttribute("autofocus") && unfocused) {
        buttons[i].focus(); // autofocus passed over the button while it was disabled
      }
    }
  }

  function wire(form) {
    var kind = form.getAttribute("data-stepup-passkey");
    var busy = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (busy) {
        return;
      }
      if (!window.PublicKeyCredential || !navigator.credentials) {
        showError(form, form.getAttribute("data-unsupported") || "Passkeys are not supported here.");
        return;
      }
      busy = true;
      var csrf = form.querySelector("input[name=csrf_token], input[name=csrfmiddlewaretoken]");
      var action = form.querySelector("input[name=action]");
      var transaction = form.querySelector("input[name=transaction]");
      var body = kind === "authenticate" ? {action: action ? action.value : ""} : {};
      if (kind === "authenticate" && transaction) {
        body.transaction = transaction.value; // the digest the passkey signs
      }
      post(form.getAttribute("data-begin-url"), body, csrf ? csrf.value : "")
        .then(kind === "register" ? createCredential : getCredential)
        .then(function (credential) {
          form.querySelector("input[name=credential]").value = JSON.stringify(
            credentialJSON(credential)
          );
          HTMLFormElement.prototype.submit.call(form);
        })
        .catch(function (error) {
          busy = false;
          if (error.body && error.body.reauth_url && sameOrigin(error.body.reauth_url)) {
            window.location.assign(error.body.reauth_url); // confirm it is you first
            return;
          }
          showError(form, refusal(form, kind, error));
        });
    });
    enable(form);
  }

  function onPage() {
    var forms = document.querySelectorAll("form[data-stepup-passkey]");
    for (var i = 0; i < forms.length; i++) {
      wire(forms[i]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", onPage);
  } else {
    onPage();
  }

  window.stepupPasskeys = {
    register: register,
    authenticate: authenticate,
    signIn: signIn,
    toBuffer: toBuffer,
    toBase64url: toBase64url,
    credentialJSON: credentialJSON
  };
})();
