"""In Chromium, on the Flask example (docs/examples/flask_app.py): a form POST that a
re-authentication interrupts is sent again after it, with every field, through the app's
own CSRF check; and the single-page helper (stepup-reauth.js) re-authenticates in a
window and retries a JSON request once."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, render_template_string, request
from werkzeug.serving import make_server

from stepup.testing import SettableClock

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "flask_app.py"

PROFILE_FORM = """<!doctype html><title>Profile</title>
<form method="post" action="/settings/profile">{{ stepup_csrf_field() }}
  <input name="name" value="Alice">
  <label><input type="checkbox" name="tag" value="x" checked> x</label>
  <label><input type="checkbox" name="tag" value="y" checked> y</label>
  <textarea name="bio">line 1
line 2 &lt;b&gt;</textarea>
  <button id="save">Save</button>
</form>"""

#: Flask-WTF's SubmitField is named "submit": kept, it shadows the form's submit method.
SUBMIT_NAMED_FORM = PROFILE_FORM.replace(
    '<button id="save">Save</button>', '<button id="save" name="submit" value="Save">Save</button>'
)

#: A 401 whose reauth_url leads off this site (a path that starts with "//", another
#: origin), as an API the page calls through stepup.fetch could answer.
ELSEWHERE = ["https://evil.example/x", "//evil.example/y", "/.//evil.example/phish"]

OFF_SITE = """<!doctype html><title>Off site</title>
<script src="/stepup/stepup-reauth.js" data-stepup-prefix="/stepup"></script>
<pre id="out"></pre>
<script>
function tryIt(which) {
  return stepup.fetch("/api/elsewhere?which=" + which).then(
    function (r) { return "resolved " + r.status; },
    function (e) { return "rejected " + e.message; });
}
</script>"""

SPA = """<!doctype html><title>SPA</title>
<script src="/stepup/stepup-reauth.js" data-stepup-prefix="/stepup"></script>
<button id="go">Regenerate</button><pre id="out"></pre>
<script>
document.getElementById("go").addEventListener("click", function () {
  stepup.fetch("/api/profile", {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": "{{ stepup_csrf_token() }}"},
    body: JSON.stringify({name: "from the SPA"})
  }).then(function (r) { return r.text().then(function (t) {
    document.getElementById("out").textContent = r.status + " " + t;
  }); });
});
</script>"""


@pytest.fixture(scope="module")
def example() -> Any:
    spec = importlib.util.spec_from_file_location("stepup_docs_flask_app_e2e", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def server(example: Any) -> Iterator[str]:
    """The example app with a profile form and a JSON endpoint, served on 127.0.0.1."""
    app: Flask = example.create_app(
        {
            "TESTING": True,
            "STEPUP_STORE": "memory://",
            "STEPUP_CLOCK": SettableClock(),
            "SESSION_COOKIE_SECURE": False,  # served over plain http on 127.0.0.1
        }
    )
    stepup = example.stepup

    def profile_page() -> str:
        return render_template_string(PROFILE_FORM)

    @stepup.csrf_protect
    @stepup.reauth_required("user.update", return_to="/settings/profile/edit")
    def profile() -> Any:
        return {"saved": [[k, v] for k, v in request.form.items(multi=True) if k != "csrf_token"]}

    def spa() -> str:
        return render_template_string(SPA)

    @stepup.csrf_protect
    @stepup.reauth_required("user.update")
    def api_profile() -> Any:
        return {"saved": request.get_json()}

    def submit_named_page() -> str:
        return render_template_string(SUBMIT_NAMED_FORM)

    def off_site() -> str:
        return render_template_string(OFF_SITE)

    def elsewhere() -> Any:
        url = ELSEWHERE[int(request.args["which"])]
        return {"error": "reauth_required", "reauth_url": url}, 401

    app.add_url_rule("/settings/profile/edit", "profile_page", profile_page)
    app.add_url_rule("/settings/profile/submit-named", "submit_named_page", submit_named_page)
    app.add_url_rule("/off-site", "off_site", off_site)
    app.add_url_rule("/api/elsewhere", "elsewhere", elsewhere)
    app.add_url_rule("/settings/profile", "profile", profile, methods=["POST"])
    app.add_url_rule("/spa", "spa", spa)
    app.add_url_rule("/api/profile", "api_profile", api_profile, methods=["POST"])
    with app.app_context():
        app.extensions["stepup"].store.patch_tenant("acme", {}, {"sensitive_actions_reauth": True})
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()
        thread.join()


def _sign_in(page: Any, url: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice password")
    page.click("button")
    page.wait_for_url(f"{url}/")


def test_an_interrupted_form_post_is_sent_again_after_the_reauth(browser: Any, server: str) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        _sign_in(page, server)
        page.goto(f"{server}/settings/profile/edit")
        page.click("#save")
        page.wait_for_url(f"{server}/stepup/reauth?*")
        assert "resume=" in page.url
        page.fill("input[name=password]", "alice password")
        page.click("button[type=submit]")
        # The resume page submits itself; the app's view answers with what it got.
        page.wait_for_url(f"{server}/settings/profile")
        saved = json.loads(page.inner_text("body"))
        assert saved == {
            # a textarea's newlines are CRLF on the wire, the first time and the second
            "saved": [
                ["name", "Alice"],
                ["tag", "x"],
                ["tag", "y"],
                ["bio", "line 1\r\nline 2 <b>"],
            ]
        }
    finally:
        context.close()


def test_the_helper_reauthenticates_in_a_window_and_retries_once(browser: Any, server: str) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        _sign_in(page, server)
        page.goto(f"{server}/spa")
        with page.expect_popup() as opened:
            page.click("#go")
        popup = opened.value
        popup.wait_for_load_state()
        assert "/stepup/reauth?" in popup.url
        popup.fill("input[name=password]", "alice password")
        popup.click("button[type=submit]")
        popup.wait_for_event("close")
        page.wait_for_function("document.getElementById('out').textContent !== ''")
        # Retried once, with the renewed session's CSRF token the window handed over.
        assert page.inner_text("#out").strip() == '200 {"saved":{"name":"from the SPA"}}'
        status = page.evaluate("stepup.status('user.update')")
        assert status["required"] is False
    finally:
        context.close()


def test_a_kept_field_named_submit_does_not_stop_the_resend(browser: Any, server: str) -> None:
    """A kept field named "submit" shadows ``form.submit``: the resume page threw and
    waited for a click on Continue."""
    context = browser.new_context()
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        _sign_in(page, server)
        page.goto(f"{server}/settings/profile/submit-named")
        page.click("#save")
        page.wait_for_url(f"{server}/stepup/reauth?*")
        page.fill("input[name=password]", "alice password")
        page.click("button[type=submit]")
        page.wait_for_url(f"{server}/settings/profile")
        saved = json.loads(page.inner_text("body"))["saved"]
        assert ["submit", "Save"] in saved
        assert errors == []
    finally:
        context.close()


@pytest.mark.parametrize("which", range(2), ids=ELSEWHERE[:2])
def test_the_helper_opens_no_window_off_this_site(browser: Any, server: str, which: int) -> None:
    """A reauth_url off this site (a path starting with "//" is another host to the
    browser) is refused: no window opens, and the promise rejects naming why."""
    context = browser.new_context()
    try:
        page = context.new_page()
        _sign_in(page, server)
        page.goto(f"{server}/off-site")
        opened: list[Any] = []
        context.on("page", lambda opened_page: opened.append(opened_page))
        # An answer, or "pending" if a window opened and waits (the old script): never a hang.
        said = page.evaluate(
            f"Promise.race([tryIt({which}),"
            " new Promise(function (done) { setTimeout(done, 10000, 'pending'); })])"
        )
        assert said == "rejected stepup: the re-authentication page is not on this site"
        assert opened == []
    finally:
        context.close()


def test_a_path_that_starts_with_two_slashes_stays_on_this_site(browser: Any, server: str) -> None:
    """ "/.//evil.example/phish" is this site's path "//evil.example/phish": the window
    opens on this site (the script opened the path alone, which the browser read as the
    host evil.example)."""
    context = browser.new_context()
    try:
        page = context.new_page()
        _sign_in(page, server)
        page.goto(f"{server}/off-site")
        with page.expect_popup() as opened:
            page.evaluate("tryIt(2); null")
        popup = opened.value
        assert popup.url.startswith(f"{server}//evil.example/phish?next=")
        popup.close()
    finally:
        context.close()
