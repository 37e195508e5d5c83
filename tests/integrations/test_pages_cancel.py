"""Where Cancel on the re-auth page goes (``views.cancel_path``), for any input: always a
safe same-origin path, never the guarded page, never the re-auth page itself."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stepup.integrations.views import cancel_path
from stepup.redirects import safe_return_path

ORIGIN = "https://app.example"
REAUTH = "/stepup/reauth"
paths = st.one_of(
    st.sampled_from(["/", "/settings", "/api-key", "/api-key/", "/stepup/reauth", "//evil"]),
    st.text(max_size=40).map(lambda t: "/" + t),
    st.text(max_size=40),
)
referers = st.one_of(
    st.just(""),
    paths.map(lambda p: ORIGIN + p),
    paths.map(lambda p: "https://evil.example" + p),
    paths.map(lambda p: "http://app.example" + p),  # same host, other scheme
    st.text(max_size=60),
)


@given(next_path=st.sampled_from(["/api-key", "/settings", "/"]), referer=referers, posted=paths)
def test_cancel_is_safe_and_never_the_prompt(next_path: str, referer: str, posted: str) -> None:
    where = cancel_path(
        next_path=next_path, reauth_path=REAUTH, posted=posted, referer=referer, origin=ORIGIN
    )
    assert safe_return_path(where) == where
    if where != "/":
        assert where.split("?")[0].rstrip("/") not in {next_path.rstrip("/"), REAUTH}


def test_the_referer_on_this_site_wins_over_home() -> None:
    assert (
        cancel_path(
            next_path="/api-key", reauth_path=REAUTH, referer=f"{ORIGIN}/keys?page=2", origin=ORIGIN
        )
        == "/keys?page=2"
    )


def test_the_guarded_page_is_never_the_way_out() -> None:
    for referer in (f"{ORIGIN}/api-key", f"{ORIGIN}/api-key/?x=1", f"{ORIGIN}{REAUTH}?next=/"):
        assert (
            cancel_path(next_path="/api-key", reauth_path=REAUTH, referer=referer, origin=ORIGIN)
            == "/"
        )


def test_another_origin_is_not_trusted() -> None:
    for referer in ("https://evil.example/keys", "http://app.example/keys", "/keys", "keys"):
        assert (
            cancel_path(next_path="/x", reauth_path=REAUTH, referer=referer, origin=ORIGIN) == "/"
        )


def test_the_form_carries_the_place_across_a_wrong_password() -> None:
    where = cancel_path(
        next_path="/x",
        reauth_path=REAUTH,
        posted="/keys",
        referer=f"{ORIGIN}{REAUTH}",
        origin=ORIGIN,
    )
    assert where == "/keys"
    hostile = cancel_path(
        next_path="/x", reauth_path=REAUTH, posted="//evil.example", origin=ORIGIN
    )
    assert hostile == "/"


def test_the_apps_place_comes_first() -> None:
    where = cancel_path(
        next_path="/x",
        reauth_path=REAUTH,
        configured="/account",
        referer=f"{ORIGIN}/keys",
        origin=ORIGIN,
    )
    assert where == "/account"
