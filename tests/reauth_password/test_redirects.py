"""Return locations: hostile inputs are refused, good paths pass unchanged, and nothing
that passes can leave the site, even after a browser or a server decodes it again."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepup.errors import ConfigurationError, MalformedInputError, StepupError
from stepup.redirects import (
    MAX_RETURN_LENGTH,
    UnsafeRedirectError,
    safe_return_path,
    safe_return_path_or_default,
)

HOSTILE: list[object] = [
    # other hosts, schemes
    "//evil.example",
    "//evil.example/path",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil",
    "\\/evil.example",
    "/\\/evil.example",
    "https:evil.example",
    "https:/evil.example",
    "https://evil.example",
    "http://evil.example",
    "HTTPS://evil.example",
    "ftp://evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox",
    "evil.example",
    "evil.example/path",
    "dashboard",
    "?next=//evil.example",
    "#//evil.example",
    # percent-encoded, once or more
    "/%2F%2Fevil.example",
    "/%2f%2fevil.example",
    "%2F%2Fevil.example",
    "/%5Cevil.example",
    "/%5C%5Cevil.example",
    "/%252F%252Fevil.example",
    "/%25252F%25252Fevil.example",
    "/%2525252F%2525252Fevil.example",
    "/%2e%2e//evil.example",
    "/%2E%2E%2F%2Fevil.example",
    "/a%2F..%2F..%2F%2Fevil.example",
    "/%09/evil.example",
    "/%0d%0a/evil.example",
    "/%00",
    "/path%0aSet-Cookie:x=1",
    "/%EF%BC%8Fevil.example",  # fullwidth solidus, UTF-8 encoded
    "/%E2%88%95evil.example",  # division slash, UTF-8 encoded
    # control characters, which browsers strip
    "/\t/evil.example",
    "/\r/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/\x00/evil.example",
    "/\x0b/evil.example",
    "/\x7f",
    "/path\x1b[31m",
    # whitespace around
    " /home",
    "/home ",
    "\t//evil.example",
    "/home\n",
    "\u3000/home",
    "/home\u00a0",
    # invisible and look-alike characters
    "/\uff0fevil.example",  # fullwidth solidus
    "/\u2215evil.example",  # division slash
    "/\u29f8evil.example",  # big solidus
    "/\ufe68evil.example",  # small reverse solidus
    "/\uff3cevil.example",  # fullwidth reverse solidus
    "/\u2044evil.example",  # fraction slash
    "/\u200b/evil.example",  # zero-width space
    "/\u202eelpmaxe.live",  # right-to-left override
    "/\ufeff/evil.example",  # byte order mark
    "/\u2028/evil.example",  # line separator
    "\uff0f\uff0fevil.example",
    # dot segments
    "/..//evil.example",
    "/./..//evil.example",
    "/.//evil.example",
    "/a/..//evil.example",
    "/a/b/../../..//evil.example",
    # characters that are never valid in a URL
    '/"onmouseover="alert(1)',
    "/<script>",
    "/`",
    # sizes and types
    "",
    "/" + "a" * MAX_RETURN_LENGTH,
    b"/home",
    42,
    ["/home"],
    object(),
]

GOOD = [
    "/",
    "/dashboard",
    "/settings/api-keys",
    "/settings/api-keys?tab=read#top",
    "/users/42/edit?x=1&y=2",
    "/search?q=caf%C3%A9&page=2",
    "/wiki/Caf%C3%A9",
    "/wiki/Café",
    "/日本語/ページ",
    "/files/report%202024.pdf",
    "/files/a%2Fb",
    "/100%25",
    "/a//b",
    "/a/./b",
    "/a/../b",
    "/path;version=1",
    "/~user/",
    "/@handle",
    "/a:b",
    "/?",
    "/#",
    "/?next=%2F%2Fevil.example",
    "/a b",
    "/" + "a" * (MAX_RETURN_LENGTH - 1),
]


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_hostile_values_are_refused(value: object) -> None:
    with pytest.raises(UnsafeRedirectError):
        safe_return_path(value)
    assert safe_return_path_or_default(value) == "/"
    assert safe_return_path_or_default(value, "/home") == "/home"


def test_there_are_enough_hostile_values() -> None:
    assert len(HOSTILE) >= 30


@pytest.mark.parametrize("value", GOOD)
def test_good_paths_pass_unchanged(value: str) -> None:
    assert safe_return_path(value) == value
    assert safe_return_path_or_default(value, "/home") == value


def test_none_means_no_location_given() -> None:
    assert safe_return_path(None) == "/"
    assert safe_return_path(None, default="/home") == "/home"
    assert safe_return_path_or_default(None, "/home") == "/home"


def test_an_unsafe_default_is_a_programming_error() -> None:
    with pytest.raises(UnsafeRedirectError):
        safe_return_path(None, default="//evil.example")
    with pytest.raises(UnsafeRedirectError):
        safe_return_path_or_default("/fine", "//evil.example")


def test_error_is_typed_and_does_not_repeat_the_value() -> None:
    with pytest.raises(UnsafeRedirectError) as caught:
        safe_return_path("//evil.example/\r\nSet-Cookie")
    assert isinstance(caught.value, MalformedInputError)
    assert isinstance(caught.value, StepupError)
    assert isinstance(caught.value, ValueError)
    assert caught.value.reason == "control character"
    assert "evil" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("//evil.example", "protocol-relative"),
        ("/\\evil", "backslash"),
        ("https://evil.example", "not a path"),
        ("/%2F%2Fevil", "protocol-relative"),
        ("/..//evil", "dot segments reach another host"),
        ("/%2525252F", "too deeply encoded"),
        ("", "empty"),
        (3, "not a string"),
    ],
)
def test_reasons_name_the_rule(value: object, reason: str) -> None:
    with pytest.raises(UnsafeRedirectError) as caught:
        safe_return_path(value)
    assert caught.value.reason == reason


# allowed hosts ------------------------------------------------------------------------

HOSTS = ["app.example", "admin.example:8443"]


@pytest.mark.parametrize(
    "value",
    [
        "https://app.example",
        "https://app.example/",
        "https://app.example/settings?tab=keys#top",
        "https://APP.example/x",
        "https://app.example?x=1",
        "https://admin.example:8443/x",
    ],
)
def test_allowed_hosts_admit_absolute_https_urls(value: str) -> None:
    assert safe_return_path(value, allowed_hosts=HOSTS) == value


@pytest.mark.parametrize(
    "value",
    [
        "http://app.example/",
        "//app.example/",
        "https://app.example.evil.example/",
        "https://evil.example/",
        "https://user@app.example/",
        "https://app.example@evil.example/",
        "https://app.example:443/",
        "https://admin.example/",
        "https://app.example\\@evil.example/",
        "https://app.example//evil.example",
        "https://app.example/%2F%2Fevil.example",
        "https://app.example/..//evil.example",
        "https://app.example./",
        "https://app.example\t/",
        "https:app.example/",
        "https:/app.example/",
        "javascript://app.example/%0aalert(1)",
    ],
)
def test_allowed_hosts_are_exact(value: str) -> None:
    with pytest.raises(UnsafeRedirectError):
        safe_return_path(value, allowed_hosts=HOSTS)


def test_no_allowed_hosts_by_default() -> None:
    with pytest.raises(UnsafeRedirectError):
        safe_return_path("https://app.example/")


@pytest.mark.parametrize("hosts", ["app.example", ["https://app.example"], ["a b"], ["x/y"]])
def test_bad_allowed_hosts_are_a_configuration_error(hosts: object) -> None:
    with pytest.raises(ConfigurationError):
        safe_return_path("/", allowed_hosts=hosts)  # type: ignore[arg-type]


# properties ---------------------------------------------------------------------------

PIECES = [
    "/", "//", "\\", "%2F", "%2f", "%5C", "%25", "%2e", ".", "..", "%09", "\t", "\r",
    "\n", "\x00", " ", ":", "@", "?", "#", "https", "javascript", "evil.example",
    "\uff0f", "\u2215", "\ufe68", "%EF%BC%8F", "a", "é", "\u200b",
]  # fmt: skip


def browser_cleanup(url: str) -> str:
    return re.sub("[\t\r\n]", "", url).replace("\\", "/")


def assert_stays_on_site(result: str) -> None:
    for candidate in (result, browser_cleanup(result)):
        assert candidate.startswith("/")
        assert not candidate.startswith(("//", "/\\"))
        parts = urlsplit(candidate)
        assert parts.scheme == ""
        assert parts.netloc == ""
    decoded = result
    for _ in range(3):  # and when someone decodes it again
        decoded = unquote(decoded)
        cleaned = browser_cleanup(decoded)
        assert not cleaned.startswith("//")
        assert urlsplit(cleaned).netloc == ""


def check(value: str) -> None:
    try:
        result = safe_return_path(value)
    except UnsafeRedirectError:
        return
    assert result == value
    assert_stays_on_site(result)


@settings(max_examples=500)
@given(st.text(max_size=60))
def test_any_text_is_refused_or_stays_on_site(value: str) -> None:
    check(value)


@settings(max_examples=1000)
@given(st.lists(st.sampled_from(PIECES), max_size=8).map("".join))
def test_tricky_compositions_are_refused_or_stay_on_site(value: str) -> None:
    check(value)


@settings(max_examples=300)
@given(st.lists(st.sampled_from(PIECES), max_size=8).map(lambda p: "/" + "".join(p)))
def test_tricky_paths_are_refused_or_stay_on_site(value: str) -> None:
    check(value)


@settings(max_examples=200)
@given(st.one_of(st.text(max_size=30), st.binary(max_size=5), st.integers(), st.none()))
def test_or_default_never_raises_and_returns_value_or_default(value: object) -> None:
    result = safe_return_path_or_default(value, "/home")
    assert result in (value, "/home")
    assert_stays_on_site(result)
