"""Inside Django, a hash in one of Django's formats is judged by ``PASSWORD_HASHERS`` only.

Leaving a hasher out of ``PASSWORD_HASHERS`` is how a Django project turns its format
off. ``DjangoHashVerifier`` passed such a hash on, and stepup's own reading of Django's
formats (``DjangoFormatsVerifier``, among the default verifiers after it) verified it:
``pbkdf2_sha1$`` on a project listing ``PBKDF2PasswordHasher`` alone answered ``ok``
where Django's ``check_password`` says False. Django's settings are configured once
per process, so each project runs in a child process of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

#: Run in a child: configure Django with the given PASSWORD_HASHERS (None: Django's
#: default list), then answer, per hash made by the real libraries, stepup's reason,
#: Django's check_password and the log lines, as JSON. Django's PBKDF2 hasher is swapped
#: for one of 1000 iterations (same algorithm): check_password runs the first hasher
#: once for a hash no hasher reads, and a million iterations each time would be slow.
CHILD = textwrap.dedent(
    """
    import json, logging, sys

    import django
    from django.conf import global_settings, settings
    from django.contrib.auth import hashers as dj

    class QuickPBKDF2(dj.PBKDF2PasswordHasher):
        iterations = 1000

    PBKDF2 = "django.contrib.auth.hashers.PBKDF2PasswordHasher"
    hashers = json.loads(sys.argv[1]) or global_settings.PASSWORD_HASHERS
    quick = ["__main__.QuickPBKDF2" if name == PBKDF2 else name for name in hashers]
    settings.configure(PASSWORD_HASHERS=quick)
    django.setup()

    import bcrypt
    from argon2 import PasswordHasher
    from werkzeug.security import generate_password_hash

    from stepup.adapters.idp.password import CHEAPEST, PasswordReauth
    from stepup.adapters.storage.memory import MemoryStore
    from stepup.integrations.django.passwords import django_verifiers
    from stepup.throttle import ThrottlePolicy

    PW = "correct horse battery staple"

    class QuickArgon2(dj.Argon2PasswordHasher):
        time_cost, memory_cost, parallelism = 1, 8, 1

    class QuickScrypt(dj.ScryptPasswordHasher):
        work_factor = 2**10

    class QuickBCryptSHA256(dj.BCryptSHA256PasswordHasher):
        rounds = 4

    def bcrypt_hash(password):
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()

    cheap = PasswordHasher.from_parameters(CHEAPEST)
    made = {
        "pbkdf2_sha256": dj.PBKDF2PasswordHasher().encode(PW, "saltsalt", 1000),
        "pbkdf2_sha1": dj.PBKDF2SHA1PasswordHasher().encode(PW, "saltsalt", 1000),
        "argon2": QuickArgon2().encode(PW, QuickArgon2().salt()),
        "bcrypt_sha256": QuickBCryptSHA256().encode(PW, QuickBCryptSHA256().salt()),
        "bcrypt": "bcrypt$" + bcrypt_hash(PW),
        "scrypt": QuickScrypt().encode(PW, QuickScrypt().salt()),
        "md5": dj.MD5PasswordHasher().encode(PW, "saltsalt"),
        "raw argon2id": cheap.hash(PW),
        "raw bcrypt": bcrypt_hash(PW),
        "werkzeug pbkdf2": generate_password_hash(PW, "pbkdf2:sha256:1000"),
    }

    class Lines(logging.Handler):
        def __init__(self):
            super().__init__()
            self.lines = []

        def emit(self, record):
            self.lines.append(record.getMessage())

    lines = Lines()
    logging.getLogger("stepup").addHandler(lines)
    reauth = PasswordReauth(
        MemoryStore(),
        hasher=cheap,
        verifiers=django_verifiers(cheap),
        throttle=ThrottlePolicy(free_failures=1000),
    )
    answers = {}
    for name, stored in made.items():
        lines.lines.clear()
        answers[name] = {
            "stored": stored,
            "stepup": reauth.verify("u1", PW, stored).reason.value,
            "wrong": reauth.verify("u1", PW + "!", stored).reason.value,
            "django": dj.check_password(PW, stored),
            "log": list(lines.lines),
        }
    print(json.dumps(answers))
    """
)

PBKDF2_ONLY = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
EVERY = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.BCryptPasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "django.contrib.auth.hashers.MD5PasswordHasher",
]
DJANGO_FORMATS = ["pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256", "bcrypt", "scrypt"]
NOT_DJANGOS = ["raw argon2id", "raw bcrypt", "werkzeug pbkdf2"]


def project(hashers: list[str] | None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(hashers)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answers: dict[str, Any] = json.loads(done.stdout)
    return answers


@pytest.fixture(scope="module")
def pbkdf2_only() -> dict[str, Any]:
    return project(PBKDF2_ONLY)


@pytest.fixture(scope="module")
def django_defaults() -> dict[str, Any]:
    return project(None)


@pytest.fixture(scope="module")
def every_hasher() -> dict[str, Any]:
    return project(EVERY)


def test_the_reported_pbkdf2_sha1_hash_is_refused_as_django_refuses_it(
    pbkdf2_only: dict[str, Any],
) -> None:
    answer = pbkdf2_only["pbkdf2_sha1"]
    assert answer["django"] is False
    assert answer["stepup"] == "unsupported_hash"
    assert set(answer["log"]) == {
        "password re-auth for 'u1': a Django pbkdf2_sha1 hash, but no hasher in"
        " PASSWORD_HASHERS reads it"
    }


@pytest.mark.parametrize("name", [*DJANGO_FORMATS, "md5"])
def test_on_pbkdf2_alone_every_other_django_format_is_unsupported_and_never_echoed(
    pbkdf2_only: dict[str, Any], name: str
) -> None:
    answer = pbkdf2_only[name]
    if name == "pbkdf2_sha256":  # the one hasher listed
        assert (answer["stepup"], answer["wrong"], answer["django"]) == (
            "ok",
            "wrong_password",
            True,
        )
        return
    assert answer["django"] is False
    assert answer["stepup"] == answer["wrong"] == "unsupported_hash"
    assert all("no hasher in PASSWORD_HASHERS reads it" in line for line in answer["log"])
    assert all(answer["stored"].partition("$")[2] not in line for line in answer["log"])


def test_on_djangos_default_hashers_a_bcrypt_hash_is_refused(
    django_defaults: dict[str, Any],
) -> None:
    """Django's default PASSWORD_HASHERS leave out BCryptPasswordHasher (bcrypt$)."""
    assert django_defaults["bcrypt"]["django"] is False
    assert django_defaults["bcrypt"]["stepup"] == "unsupported_hash"
    assert django_defaults["bcrypt_sha256"]["stepup"] == "ok"


@pytest.mark.parametrize("hashers", ["pbkdf2_only", "django_defaults", "every_hasher"])
def test_stepup_agrees_with_djangos_check_password_on_every_django_format(
    request: pytest.FixtureRequest, hashers: str
) -> None:
    answers: dict[str, Any] = request.getfixturevalue(hashers)
    for name in [*DJANGO_FORMATS, "md5"]:
        assert (answers[name]["stepup"] == "ok") is answers[name]["django"], name


@pytest.mark.parametrize("name", NOT_DJANGOS)
def test_hashes_that_are_not_djangos_keep_working_on_any_list(
    pbkdf2_only: dict[str, Any], django_defaults: dict[str, Any], name: str
) -> None:
    for answers in (pbkdf2_only, django_defaults):
        assert answers[name]["stepup"] == "ok", name
        assert answers[name]["wrong"] == "wrong_password", name
