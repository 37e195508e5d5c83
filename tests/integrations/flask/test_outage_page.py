"""Flask: a guard that cannot decide (the store is down) answers a browser with stepup's
"try again" page (503), not the raw JSON body; a script still gets the JSON."""

from __future__ import annotations

from integrations.flask.flask_support import make_app, set_flag
from integrations.record_outage_support import TRY_AGAIN, ReadOutage


def test_a_browser_reads_the_page_and_a_script_the_json() -> None:
    store = ReadOutage()
    alice = make_app(store=store).client()
    assert alice.login("alice").status_code == 303
    assert set_flag(alice).status_code == 200
    store.down = True
    page = alice.get("/api-key", headers={"Accept": "text/html"})
    assert page.status_code == 503
    assert page.mimetype == "text/html"
    assert TRY_AGAIN in page.get_data(as_text=True)
    assert page.headers["Retry-After"] == "5"
    assert page.headers["Cache-Control"] == "no-store"
    script = alice.get("/api-key", headers={"Accept": "application/json"})
    assert script.status_code == 503
    assert script.get_json()["error"] == "reauth_unavailable"
    form = alice.post("/api-key/regenerate", data={"label": "x"})  # a form POST too
    assert (form.status_code, form.mimetype) == (503, "text/html")
