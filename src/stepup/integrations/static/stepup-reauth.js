/*
 * stepup-reauth.js: re-authentication for single-page apps, and the pages' own helpers.
 * No build step, no dependencies. Served by each integration under its prefix
 * (Flask /stepup/stepup-reauth.js, Django <include path>/stepup-reauth.js, Starlette
 * <prefix>/stepup-reauth.js). See docs/reauth.md.
 *
 *   <script src="/stepup/stepup-reauth.js" data-stepup-prefix="/stepup"></script>
 *
 *   // Like fetch(); on a "reauth_required" 401 it opens the re-auth page in a window,
 *   // waits until the user confirmed (or closed it), and sends the request once more.
 *   // It reads a guarded JSON endpoint's {"error": "reauth_required", "reauth_url"}
 *   // and a JSON:API resource's (the tenant settings PATCH) {"errors": [{"code":
 *   // "reauth_required", "meta": {"reauth_url"}}]} alike.
 *   const response = await stepup.fetch("/api/keys/regenerate", {method: "POST", ...});
 *
 *   // Does this action need a re-authentication now, and how? (nothing is performed)
 *   const status = await stepup.status("api_key.regenerate");
 */
(function () {
  "use strict";
  var DONE = "stepup:reauth-done";
  var script = document.currentScript;
  var prefix = (script && script.getAttribute("data-stepup-prefix")) || "/stepup";

  // On stepup's own pages: send a resumed form, or tell the opener we are done.
  function onPage() {
    var form = document.getElementById("stepup-resume");
    if (form) {
      // The form's own method: a kept field named "submit" (Flask-WTF's SubmitField)
      // shadows form.submit.
      HTMLFormElement.prototype.submit.call(form);
      return;
    }
    var done = document.querySelector("[data-stepup-reauth-done]");
    if (done && window.opener && window.opener !== window) {
      window.opener.postMessage(
        {type: DONE, csrfToken: done.getAttribute("data-csrf-token") || ""},
        window.location.origin
      );
      window.close();
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", onPage);
  } else {
    onPage();
  }

  // The re-auth page on this site, asked to come back to ``next``; null for any page
  // elsewhere. The whole URL, not its path: a path that starts with "//" is read by the
  // browser as another host.
  function withNext(url, next) {
    var parsed;
    try {
      parsed = new URL(url, window.location.href);
    } catch (ignored) {
      return null;
    }
    if (parsed.origin !== window.location.origin) return null;
    parsed.searchParams.set("next", next);
    return parsed.href;
  }

  // Open the re-auth page; resolve with the renewed CSRF token once the user confirmed,
  // reject when the window was closed first or could not be opened.
  function reauthenticate(reauthUrl) {
    return new Promise(function (resolve, reject) {
      var url = withNext(reauthUrl, prefix + "/reauth/done");
      if (url === null) {
        reject(new Error("stepup: the re-authentication page is not on this site"));
        return;
      }
      var popup = window.open(url, "stepup-reauth", "popup,width=480,height=640");
      if (!popup) {
        reject(new Error("stepup: the re-authentication window was blocked"));
        return;
      }
      var timer = null;
      function finish(error, token) {
        window.removeEventListener("message", onMessage);
        if (timer !== null) window.clearInterval(timer);
        if (error) reject(error); else resolve(token);
      }
      function onMessage(event) {
        if (event.origin !== window.location.origin || event.source !== popup) return;
        if (!event.data || event.data.type !== DONE) return;
        finish(null, event.data.csrfToken || "");
      }
      window.addEventListener("message", onMessage);
      timer = window.setInterval(function () {
        if (popup.closed) finish(new Error("stepup: the re-authentication was not completed"));
      }, 500);
    });
  }

  var CSRF_HEADERS = ["X-CSRF-Token", "X-CSRFToken"];

  // Where a 401's body asks to re-authenticate, or null when it does not: a guarded JSON
  // endpoint's {"error": "reauth_required", "reauth_url": ...}, or a JSON:API error
  // document's first error {"code": "reauth_required", "meta": {"reauth_url": ...}}.
  function reauthUrlOf(body) {
    if (!body || typeof body !== "object") return null;
    if (body.error === "reauth_required") {
      return typeof body.reauth_url === "string" && body.reauth_url ? body.reauth_url : null;
    }
    var error = Array.isArray(body.errors) ? body.errors[0] : null;
    if (!error || error.code !== "reauth_required" || !error.meta) return null;
    var url = error.meta.reauth_url;
    return typeof url === "string" && url ? url : null;
  }

  function jsonInit(init) {
    var copy = Object.assign({}, init || {});
    var headers = new Headers(copy.headers || {});
    if (!headers.has("Accept")) headers.set("Accept", "application/json");
    copy.headers = headers;
    copy.credentials = copy.credentials || "same-origin";
    return copy;
  }

  // fetch(), re-authenticating and retrying once when the server asks for it. The body
  // must be re-sendable (a string, FormData, URLSearchParams, Blob; not a stream).
  // options.onCsrfToken(token) is called with the renewed session's CSRF token.
  function stepupFetch(input, init, options) {
    var first = jsonInit(init);
    return window.fetch(input, first).then(function (response) {
      if (response.status !== 401) return response;
      return response.clone().json().then(function (body) {
        var reauthUrl = reauthUrlOf(body);
        if (!reauthUrl) return response;
        return reauthenticate(reauthUrl).then(function (token) {
          var again = jsonInit(init);
          CSRF_HEADERS.forEach(function (name) {
            if (token && again.headers.has(name)) again.headers.set(name, token);
          });
          if (token && options && typeof options.onCsrfToken === "function") {
            options.onCsrfToken(token);
          }
          return window.fetch(input, again);
        });
      }, function () { return response; });
    });
  }

  function status(action) {
    var url = prefix + "/reauth/status?" + new URLSearchParams({action: action});
    return window.fetch(url, jsonInit()).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) {
          var error = new Error("stepup: " + (body && body.error || response.status));
          error.status = response.status;
          error.body = body;
          throw error;
        }
        return body;
      });
    });
  }

  window.stepup = {fetch: stepupFetch, status: status, reauthenticate: reauthenticate, prefix: prefix};
})();
