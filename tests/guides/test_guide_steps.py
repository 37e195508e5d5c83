"""Each getting-started guide, step by step, as a reader follows it.

The example is copied out of the source tree into an empty directory, started there with
the command the guide shows (on a free loopback port), and driven over HTTP through the
guide's steps: sign in, the page works while the flag is off, the tenant PATCH asks for
a re-authentication and then turns the flag on, and a new session is asked before the
sensitive page. (tests/packaging/test_guides.py installs each guide's ``pip install``
line from the wheel; this test follows what comes after it.)
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from integrations.tenant_answers import only_error
from stepup.sealing import SecretBox
from stepup.totp import TOTP

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent
FLAG_ON = {
    "data": {"type": "tenant", "attributes": {"feature_flags": {"sensitive_actions_reauth": True}}}
}
JSONAPI = {"Content-Type": "application/vnd.api+json"}
ALICE, BOB = ("alice", "alice password"), ("bob", "bob password")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


#: What a reader has not set unless the guide says so (the examples' keys and switches).
UNSET = ("PYTEST", "DJANGO_", "FLASK_", "SECRET_KEY", "STEPUP_DEV", "STEPUP_ENCRYPTION_KEY")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(UNSET)}
    env.pop("PYTHONPATH", None)  # the example imports stepup as installed, nothing else
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def guide(name: str) -> str:
    return (DOCS / f"getting-started-{name}.md").read_text()


def exports(text: str) -> dict[str, str]:
    """The ``export NAME=value`` lines of the guide's shell blocks (placeholders left out)."""
    return {
        name: value
        for name, value in re.findall(r"^export (\w+)=(\S+)", text, re.M)
        if "..." not in value and "<" not in value
    }


def shell_block_lines(text: str) -> list[str]:
    """The commands of the guide's ``sh`` blocks (comments dropped)."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            command = line.split("  #", 1)[0].split(" # ", 1)[0].strip()
            if command:
                lines.append(command)
    return lines


@contextmanager
def serving(command: list[str], cwd: Path, port: int, env: dict[str, str]) -> Iterator[str]:
    log = cwd / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
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
            raise AssertionError(f"{failed}\n--- server log\n{log.read_text()[-4000:]}") from None
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def hidden_fields(html: str) -> dict[str, str]:
    fields = {}
    for tag in re.findall(r"<input[^>]*>", html):
        if 'type="hidden"' in tag:
            name = re.search(r'name="([^"]+)"', tag)
            value = re.search(r'value="([^"]*)"', tag)
            if name:
                fields[name.group(1)] = value.group(1) if value else ""
    return fields


def client(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, follow_redirects=False, timeout=30)


def sign_in(browser: httpx.Client, path: str, user: tuple[str, str]) -> None:
    form = browser.get(path)
    assert form.status_code == 200, f"GET {path}: {form.status_code}"  # a sign-in page to open
    data = {**hidden_fields(form.text), "username": user[0], "password": user[1]}
    done = browser.post(path, data=data)
    assert done.status_code in (302, 303), done.text[:1000]


def reauthenticate(browser: httpx.Client, reauth_url: str, password: str) -> None:
    page = browser.get(reauth_url)
    assert page.status_code == 200, page.text[:1000]
    form = re.search(r'<form[^>]*method="post"[^>]*action="([^"]*)"', page.text)
    action = form.group(1).replace("&amp;", "&") if form and form.group(1) else reauth_url
    done = browser.post(action, data={**hidden_fields(page.text), "password": password})
    assert done.status_code in (302, 303), done.text[:1000]


def turn_flag_on(browser: httpx.Client, password: str, **headers: str) -> None:
    """The guide's PATCH: 401 asking for a re-authentication first, then 200."""
    body = json.dumps(FLAG_ON)
    first = browser.patch("/stepup/tenants/acme", content=body, headers={**JSONAPI, **headers})
    assert first.status_code == 401, f"{first.status_code}: {first.text[:500]}"
    error = only_error(first.json())
    assert error["code"] == "reauth_required"
    reauthenticate(browser, error["meta"]["reauth_url"], password)
    again = browser.patch("/stepup/tenants/acme", content=body, headers={**JSONAPI, **headers})
    assert again.status_code == 200, again.text[:500]
    assert again.json()["data"]["attributes"]["feature_flags"]["sensitive_actions_reauth"] is True


def copy_example(name: str, into: Path) -> Path:
    source = DOCS / "examples" / name
    target = into / name
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
    else:
        shutil.copy(source, target)
    return target


def test_flask_guide(tmp_path: Path) -> None:
    text = guide("flask")
    assert "flask --app flask_app.py run" in shell_block_lines(text)
    copy_example("flask_app.py", tmp_path)
    port = _free_port()
    command = ["flask", "--app", "flask_app.py", "run", "--port", str(port)]
    assert exports(text) == {"STEPUP_DEV": "1"}, "the guide runs it locally with STEPUP_DEV=1"
    with serving(command, tmp_path, port, _env(**exports(text))) as base:
        with client(base) as bob:
            sign_in(bob, "/login", BOB)
            assert bob.get("/settings/api-key").status_code == 200  # the flag is off
        with client(base) as alice:
            sign_in(alice, "/login", ALICE)
            turn_flag_on(alice, ALICE[1])
        with client(base) as bob:
            sign_in(bob, "/login", BOB)
            asked = bob.get("/settings/api-key")
            assert asked.status_code in (302, 303)
            assert asked.headers["location"].startswith("/stepup/reauth?next=%2Fsettings%2Fapi-key")
            reauthenticate(bob, asked.headers["location"], BOB[1])
            assert bob.get("/settings/api-key").status_code == 200


@pytest.mark.parametrize("framework", ["starlette", "fastapi"])
def test_starlette_and_fastapi_guides_from_where_the_file_is(
    framework: str, tmp_path: Path
) -> None:
    text = guide(framework)
    shown = f"uvicorn --factory {framework}_app:create_app"
    assert shown in shell_block_lines(text), f"the {framework} guide no longer says `{shown}`"
    copy_example(f"{framework}_app.py", tmp_path)
    port = _free_port()
    command = ["uvicorn", "--factory", f"{framework}_app:create_app", "--port", str(port)]
    page = "/api-key" if framework == "starlette" else "/api/key"
    assert exports(text) == {"STEPUP_DEV": "1"}, "the guide runs it locally with STEPUP_DEV=1"
    with serving(command, tmp_path, port, _env(**exports(text))) as base:
        with client(base) as alice:
            sign_in(alice, "/login", ALICE)  # GET /login shows the form, POST signs in
            assert alice.get(page).status_code == 200  # the flag is off
            turn_flag_on(alice, ALICE[1], Accept="application/json")
        with client(base) as bob:  # a new session
            sign_in(bob, "/login", BOB)
            browser = bob.get(page)
            assert browser.status_code == 303
            assert browser.headers["location"].startswith("/stepup/reauth?next=")
            if framework == "fastapi":  # the guide: JSON only for a JSON client
                as_json = bob.get(page, headers={"Accept": "application/json"})
                assert as_json.status_code == 401
                answer: dict[str, Any] = as_json.json()
                assert answer["error"] == "reauth_required"
                assert (
                    answer["reauth_url"] == "/stepup/reauth?next=%2Fapi%2Fkey&action=api_key.read"
                )
                assert f'"reauth_url": "{answer["reauth_url"]}"' in text
            reauthenticate(bob, browser.headers["location"], BOB[1])
            assert bob.get(page).status_code == 200


#: The files the Django guide shows in full, for the reader to put in the project.
DJANGO_FILES = ("acme/settings.py", "acme/urls.py", "acme/views.py")


def shown_file(text: str, name: str) -> str:
    """A file the guide shows in full (its ``literalinclude`` block)."""
    marker = f"<!-- literalinclude: examples/django_app/{name} -->\n```python\n"
    assert marker in text, f"the guide no longer shows {name}"
    return text.split(marker, 1)[1].split("\n```\n", 1)[0] + "\n"


def test_django_guide(tmp_path: Path) -> None:
    """Only what the page shows: Django's startproject, the three files, the commands."""
    text = guide("django")
    steps = shell_block_lines(text)
    start = steps.index("django-admin startproject acme .")
    project = tmp_path / "project"
    project.mkdir()
    env = _env(
        DJANGO_DEBUG="1",
        DJANGO_SUPERUSER_USERNAME=ALICE[0],
        DJANGO_SUPERUSER_PASSWORD=ALICE[1],
        DJANGO_SUPERUSER_EMAIL="alice@example.com",
    )
    made = subprocess.run(
        steps[start].split(), cwd=project, env=env, capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, made.stderr
    for name in DJANGO_FILES:  # "replace acme/settings.py and acme/urls.py, add acme/views.py"
        (project / name).write_text(shown_file(text, name))
    port = _free_port()
    for step in steps[start + 1 :]:
        if step.startswith("export "):
            continue  # set above, as the guide has it
        argv = step.split()
        if argv[-1] == "runserver":
            break
        if argv[-1] == "createsuperuser":
            argv.append("--noinput")  # the same, without prompts (from DJANGO_SUPERUSER_*)
        done = subprocess.run(
            argv, cwd=project, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"{step}:\n{done.stdout}\n{done.stderr}"
    shown = subprocess.run(
        ["python", "manage.py", "stepup_tenant", "acme"], cwd=project, env=env,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "sensitive_actions_reauth is off" in shown.stdout
    command = ["python", "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    with serving(command, project, port, env) as base:
        with client(base) as alice:
            sign_in(alice, "/login/", ALICE)
            assert alice.get("/api-key/").status_code == 200  # the flag is off
            turn_flag_on(alice, ALICE[1])
        with client(base) as again:  # "a new session (a private window)"
            sign_in(again, "/login/", ALICE)
            asked = again.get("/api-key/")
            assert asked.status_code in (302, 303)
            assert asked.headers["location"].startswith("/stepup/reauth/?next=%2Fapi-key%2F")
            reauthenticate(again, asked.headers["location"], ALICE[1])
            assert again.get("/api-key/").status_code == 200


def test_the_tenant_command_without_create_names_the_fix(tmp_path: Path) -> None:
    project = copy_example("django_app", tmp_path)
    env = _env(DJANGO_DEBUG="1")
    subprocess.run(
        ["python", "manage.py", "migrate"], cwd=project, env=env, capture_output=True, check=True
    )
    missing = subprocess.run(
        ["python", "manage.py", "stepup_tenant", "acme"], cwd=project, env=env,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert missing.returncode != 0
    assert "python manage.py stepup_tenant acme --create" in missing.stderr
    for expected in ("created", "is off"):  # first time: created; second: unchanged
        made = subprocess.run(
            ["python", "manage.py", "stepup_tenant", "acme", "--create", "--name", "Acme"],
            cwd=project, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert expected in made.stdout
    assert '"name": "Acme"' in made.stdout


@pytest.mark.parametrize(
    ("framework", "command"),
    [
        ("flask", ["flask", "--app", "flask_app.py", "run"]),
        ("starlette", ["uvicorn", "--factory", "starlette_app:create_app"]),
        ("fastapi", ["uvicorn", "--factory", "fastapi_app:create_app"]),
    ],
)
def test_without_the_guides_switch_or_keys_the_example_refuses_to_start(
    framework: str, command: list[str], tmp_path: Path
) -> None:
    """In production (no STEPUP_DEV=1) the guide's command stops at once, saying what to set,
    rather than store TOTP secrets unsealed or sign sessions with a key that dies with it."""
    copy_example(f"{framework}_app.py", tmp_path)
    port = str(_free_port())
    done = subprocess.run(
        [*command, "--port", port], cwd=tmp_path, env=_env(), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "set SECRET_KEY and STEPUP_ENCRYPTION_KEY (or STEPUP_DEV=1 to try it locally)" in said
    assert not (tmp_path / "stepup-dev.key").exists()
    assert not (tmp_path / "stepup.sqlite3").exists()  # nothing stored before refusing


def test_the_flask_guides_local_run_keeps_its_sealing_key_across_restarts(tmp_path: Path) -> None:
    """STEPUP_DEV=1: the development key is made once (0600), next to stepup.sqlite3, said
    at start-up, and read again by the next start; the secrets in the database are sealed."""
    copy_example("flask_app.py", tmp_path)
    env = _env(**exports(guide("flask")))
    keys = []
    for _ in range(2):
        port = _free_port()
        command = ["flask", "--app", "flask_app.py", "run", "--port", str(port)]
        with serving(command, tmp_path, port, env) as base, client(base) as bob:
            sign_in(bob, "/login", BOB)
            if not keys:  # bob turns on two-factor authentication, as a reader would
                form = hidden_fields(bob.get("/stepup/2fa").text)
                enrol = bob.post("/stepup/2fa/enrol", data=form)
                shown = re.search(r'id="stepup-manual-key">([^<]+)</code>', enrol.text)
                assert shown, enrol.text[:1000]
                secret = shown.group(1).replace(" ", "")
                code = TOTP(secret).at(time.time())  # the server's clock: the system's
                form = {**hidden_fields(bob.get("/stepup/2fa").text), "code": code}
                assert bob.post("/stepup/2fa/confirm", data=form).status_code == 200
        key_file = tmp_path / "stepup-dev.key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        keys.append(key_file.read_text())
        assert "development key in" in (tmp_path / "server.log").read_text()
    assert keys[0] == keys[1]
    with closing(sqlite3.connect(tmp_path / "stepup.sqlite3")) as database:
        rows = database.execute("SELECT data FROM stepup_credentials").fetchall()
    # The sealed secret is in the credential's one device (docs/totp.md, "Several devices"),
    # under the development key's own id.
    sealed = [device["secret"][:7] for (data,) in rows for device in json.loads(data)["devices"]]
    assert sealed == ["v1:dev:"]
    assert secret not in rows[0][0]

    # Going to production: the guide's reseal moves it under k1, the production key's id.
    production_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    [reseal] = [
        block
        for block in re.findall(r"```sh\n(.*?)```", guide("flask"), re.S)
        if "stepup operator reseal" in block
    ]
    done = subprocess.run(
        ["bash", "-c", reseal], cwd=tmp_path, input="y\n", capture_output=True, text=True,
        env=_env(STEPUP_ENCRYPTION_KEY=production_key), timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resealed: 1 secret(s) under key 'k1'" in done.stdout
    with closing(sqlite3.connect(tmp_path / "stepup.sqlite3")) as database:
        [(data,)] = database.execute("SELECT data FROM stepup_credentials").fetchall()
    [device] = json.loads(data)["devices"]
    production = SecretBox({"k1": base64.urlsafe_b64decode(production_key)}, current="k1")
    assert device["secret"].startswith("v1:k1:")
    assert production.open(device["secret"], context=device["device_id"]) == secret


@pytest.mark.parametrize(
    ("framework", "command"),
    [
        ("flask", ["flask", "--app", "flask_app.py", "run"]),
        ("starlette", ["uvicorn", "--factory", "starlette_app:create_app"]),
    ],
)
def test_the_flag_step_sends_the_cookie_the_browser_has_after_reauthenticating(
    framework: str, command: list[str], tmp_path: Path
) -> None:
    """The guide's PATCH runs from the browser (a ``fetch``), so the second try carries
    the session cookie the re-authentication renewed; the cookie copied before it, as a
    ``curl -b`` would send it, is refused again, as the guide warns."""
    text = guide(framework)
    assert 'fetch("/stepup/tenants/acme", {\n  method: "PATCH",' in text
    assert "run the `fetch` again" in text
    copied_cookie = [line for line in shell_block_lines(text) if "session=" in line]
    assert copied_cookie == []  # no copied cookie to go stale
    copy_example(f"{framework}_app.py", tmp_path)
    port = _free_port()
    env = _env(**exports(text))
    with (
        serving([*command, "--port", str(port)], tmp_path, port, env) as base,
        client(base) as alice,
    ):
        sign_in(alice, "/login", ALICE)
        body = json.dumps(FLAG_ON)
        first = alice.patch("/stepup/tenants/acme", content=body, headers=JSONAPI)
        assert first.status_code == 401
        copied = dict(alice.cookies)  # what a reader would paste into curl -b
        reauthenticate(alice, only_error(first.json())["meta"]["reauth_url"], ALICE[1])
        assert dict(alice.cookies) != copied  # re-authenticating renewed the session
        with httpx.Client(base_url=base, cookies=copied) as curl:
            stale = curl.patch("/stepup/tenants/acme", content=body, headers=JSONAPI)
            assert stale.status_code == 401
        again = alice.patch("/stepup/tenants/acme", content=body, headers=JSONAPI)
        assert again.status_code == 200


def test_every_guide_turns_the_flag_on_with_the_same_fetch() -> None:
    """The browser-console step is the same in each guide: JSON asked for (the 401's
    ``reauth_url`` comes as JSON) and the answer printed, so the reader sees it."""
    fetches = {}
    for name in ("flask", "django", "starlette", "fastapi"):
        found = re.search(
            r'^( *)fetch\("/stepup/tenants/acme".*?console\.log\)$', guide(name), re.M | re.S
        )
        assert found, f"the {name} guide has no fetch that prints its answer"
        indent = found.group(1)
        fetches[name] = "\n".join(line.removeprefix(indent) for line in found.group(0).splitlines())
    assert len(set(fetches.values())) == 1, fetches
    assert '"Accept": "application/json"' in fetches["django"]
