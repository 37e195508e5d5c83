"""A level this sign-in cannot reach: the re-auth page says so instead of offering a
method whose grant would only be asked for again."""

from __future__ import annotations

from integrations.flask.flask_support import app_policy, make_app
from stepup.assurance import Level, Levels
from stepup.policy import Policy, Rule, Sensitivity

UNREACHABLE = "This action needs a stronger confirmation than this sign-in can give."
GERMAN = "Diese Aktion erfordert eine stärkere Bestätigung"


def _policy() -> Policy:
    # Only a provider's acr proves "high": a password session cannot reach it.
    levels = Levels((Level("basic", methods=(("pwd",),)), Level("high", acr=("urn:high",))))
    rule = Rule(Sensitivity.SENSITIVE, level="high", description="Wire money")
    return app_policy().with_levels(levels).extend({"money.wire": rule})


def test_the_page_names_the_cause_and_offers_no_form() -> None:
    app = make_app(policy=_policy())
    alice = app.client()
    alice.login("alice")
    page = alice.get("/stepup/reauth?action=money.wire&next=/home")
    text = page.get_data(as_text=True)
    assert UNREACHABLE in text
    assert 'name="password"' not in text
    assert 'href="/home"' in text or "stepup-cancel" in text  # a way out


def test_the_cause_is_translated() -> None:
    app = make_app(policy=_policy())
    alice = app.client()
    alice.login("alice")
    page = alice.get(
        "/stepup/reauth?action=money.wire&next=/home", headers={"Accept-Language": "de"}
    )
    assert GERMAN in page.get_data(as_text=True)


def test_a_reachable_level_still_shows_the_form() -> None:
    levels = Levels((Level("basic", methods=(("pwd",),)),))
    rule = Rule(Sensitivity.SENSITIVE, level="basic")
    policy = app_policy().with_levels(levels).extend({"money.wire": rule})
    app = make_app(policy=policy)
    alice = app.client()
    alice.login("alice")
    text = alice.get("/stepup/reauth?action=money.wire&next=/home").get_data(as_text=True)
    assert UNREACHABLE not in text
    assert 'name="password"' in text
