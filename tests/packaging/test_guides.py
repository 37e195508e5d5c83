"""Each getting-started guide, copied verbatim, works from a wheel outside the source tree.

For every framework: a fresh virtual environment gets exactly the guide's ``pip install``
line (the wheel built from this tree stands in for the index), the guide's example is
copied to an empty directory, started with the guide's own command, and driven over HTTP:
sign in, open a stepup page, fetch its stylesheet and the single-page helper
(``stepup-reauth.js``), ask the re-auth status endpoint, and read the page in German. A
template, the stylesheet, the script or a catalog left out of the wheel, or an extra that
misses a package the integration imports, fails here.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest

from packaging_support import DOCS, GUIDES, ROOT, Venv, clean_env

pytestmark = pytest.mark.packaging

CATALOG = ROOT / "src" / "stepup" / "locale" / "de"


@dataclass(frozen=True)
class Guide:
    framework: str
    files: tuple[str, ...]  # copied from docs/ to the same place under the empty directory
    workdir: str  # where the guide's commands run, relative to that directory
    prepare: tuple[tuple[str, ...], ...]  # commands before the server, as the guide shows
    serve: tuple[str, ...]  # the guide's command, then the address options
    login: str
    user: tuple[str, str]
    page: str  # a stepup page a signed-in user may open


GUIDE_RUNS = [
    Guide(
        "flask",
        ("examples/flask_app.py",),
        "docs/examples",  # the guide: run it where flask_app.py is
        (),
        ("flask", "--app", "flask_app.py", "run", "--host", "127.0.0.1", "--port"),
        "/login",
        ("alice", "alice password"),
        "/stepup/2fa",
    ),
    Guide(
        "django",
        ("examples/django_app",),
        "docs/examples/django_app",
        (
            ("python", "manage.py", "migrate"),
            ("python", "manage.py", "createsuperuser", "--noinput"),
            ("python", "manage.py", "stepup_tenant", "acme", "--create"),
        ),
        ("python", "manage.py", "runserver", "--noreload"),
        "/login/",
        ("alice", "alice password"),
        "/stepup/2fa/",
    ),
    Guide(
        "starlette",
        ("examples/starlette_app.py",),
        "docs/examples",
        (),
        ("uvicorn", "--factory", "starlette_app:create_app", "--port"),
        "/login",
        ("alice", "alice password"),
        "/stepup/2fa",
    ),
    Guide(
        "fastapi",
        ("examples/fastapi_app.py",),
        "docs/examples",
        (),
        ("uvicorn", "--factory", "fastapi_app:create_app", "--port"),
        "/login",
        ("alice", "alice password"),
        "/stepup/2fa",
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass
class Answer:
    status: int
    headers: Message
    body: str


class Browser:
    """A cookie-keeping HTTP client that shows redirects instead of following them."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect()
        )

    def request(self, path: str, form: dict[str, str] | None = None, **headers: str) -> Answer:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        # Always http://127.0.0.1:<port>, the server this test started.
        request = urllib.request.Request(self.base + path, data=data, headers=headers)  # noqa: S310
        try:
            with self.opener.open(request, timeout=60) as response:
                return Answer(response.status, response.headers, response.read().decode())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.headers, error.read().decode(errors="replace"))


def _hidden_fields(html: str) -> dict[str, str]:
    fields = {}
    for tag in re.findall(r"<input[^>]*>", html):
        if 'type="hidden"' in tag:
            name = re.search(r'name="([^"]+)"', tag)
            value = re.search(r'value="([^"]*)"', tag)
            if name:
                fields[name.group(1)] = value.group(1) if value else ""
    return fields


def _exports(guide_text: str) -> dict[str, str]:
    """The ``export NAME=value`` lines of the guide's shell blocks (placeholders left out)."""
    return {
        name: value
        for name, value in re.findall(r"^export (\w+)=(\S+)", guide_text, re.M)
        if "..." not in value
    }


#: Set for the in-process tests (tests/conftest.py); a reader has them only if the guide says.
_EXAMPLE_KEYS = ("SECRET_KEY", "STEPUP_ENCRYPTION_KEY", "STEPUP_DEV")


def _as_a_reader(env: dict[str, str], set_by_guide: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in _EXAMPLE_KEYS or k in set_by_guide}


@contextmanager
def _server(
    venv: Venv, command: tuple[str, ...], cwd: Path, port: int, env: dict[str, str]
) -> Iterator[str]:
    """Start the guide's server; an assertion failing while it runs shows its log."""
    program, *args = command
    log = cwd / "server.log"
    process = subprocess.Popen(
        [str(venv.bin(program)), *args, str(port)] if command[-1] == "--port"
        else [str(venv.bin(program)), *args, f"127.0.0.1:{port}"],
        cwd=cwd,
        env=_as_a_reader(clean_env(**env), set_by_guide=env),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60  # start-up, not a measurement
        while True:
            if process.poll() is not None:
                pytest.fail(f"{' '.join(command)} exited {process.returncode}:\n{log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"{' '.join(command)} did not start"
                time.sleep(0.2)
        try:
            yield f"http://127.0.0.1:{port}"
        except AssertionError as failed:
            raise AssertionError(f"{failed}\n--- server log\n{log.read_text()[-6000:]}") from None
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _visible(html: str) -> str:
    """A page without what changes on every request or with the language attribute."""
    return re.sub(r'(value|content|lang)="[^"]*"', "", html)


@pytest.mark.parametrize("guide", GUIDE_RUNS, ids=lambda g: g.framework)
def test_the_guide_works_copied_verbatim(
    guide: Guide,
    fresh_venv: Callable[..., Venv],
    guides: dict[str, list[str]],
    tmp_path: Path,
) -> None:
    text = GUIDES[guide.framework].read_text()
    shown = " ".join(guide.serve[: 4 if guide.framework == "flask" else 3])
    assert shown in text, f"the {guide.framework} guide no longer says `{shown}`"
    for command in guide.prepare:
        assert " ".join(command[:3]) in text, f"the guide no longer says `{' '.join(command)}`"
    exports = _exports(text)  # as the guide has the reader set them

    venv = fresh_venv(*guides[guide.framework])
    site = tmp_path / "site"
    for name in guide.files:
        source, target = DOCS / name, site / "docs" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(
                source, target, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3")
            )
        else:
            shutil.copy(source, target)
    cwd = site / guide.workdir
    user, password = guide.user
    for command in guide.prepare:
        venv.run(
            *command,
            cwd=cwd,
            DJANGO_SUPERUSER_USERNAME=user,
            DJANGO_SUPERUSER_PASSWORD=password,
            DJANGO_SUPERUSER_EMAIL=f"{user}@example.com",
            **exports,
        )
    where = venv.run("python", "-c", "import stepup; print(stepup.__file__)", cwd=cwd)
    assert where.startswith(str(venv.path)), where

    with _server(venv, guide.serve, cwd, _free_port(), exports) as base:
        browser = Browser(base)
        form = browser.request(guide.login)
        fields = _hidden_fields(form.body) if form.status == 200 else {}
        signed_in = browser.request(guide.login, {**fields, "username": user, "password": password})
        assert signed_in.status in {302, 303}, signed_in.body[:2000]

        page = browser.request(guide.page)
        assert page.status == 200, page.body[:2000]
        assert 'class="stepup' in page.body
        stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', page.body)
        assert stylesheet, "a stepup page links its stylesheet"
        css = browser.request(stylesheet.group(1))
        assert css.status == 200
        assert css.headers.get_content_type() == "text/css"
        assert ".stepup" in css.body

        # The single-page apps' helper (package data) and the status endpoint it asks.
        helper = browser.request("/stepup/stepup-reauth.js")
        assert helper.status == 200, helper.body[:2000]
        assert helper.headers.get_content_type() == "text/javascript"
        assert "stepup" in helper.body
        asked = browser.request("/stepup/reauth/status?action=api_key.regenerate")
        assert asked.status == 200, asked.body[:2000]
        assert json.loads(asked.body)["action"] == "api_key.regenerate"

        if CATALOG.is_dir():  # the tree ships German: so must the wheel
            german = browser.request(guide.page, **{"Accept-Language": "de"})
            assert german.status == 200
            assert '<html lang="de"' in german.body
            assert _visible(german.body) != _visible(page.body), "the German catalog is missing"
