"""Print tests/reauth_password/flask_security_vectors.py: hashes made by Flask-Security-Too.

Not a test, and not run by the suite (the project does not depend on Flask-Security-Too).
Run it in a virtual environment with Flask-Security-Too, Flask-SQLAlchemy, argon2-cffi and
bcrypt installed, to make the vectors again:

    python tests/reauth_password/make_flask_security_vectors.py \\
        > tests/reauth_password/flask_security_vectors.py

Each password goes the way Flask-Security-Too's forms send it: normalised with
``password_util.normalize`` (``SECURITY_PASSWORD_NORMALIZE_FORM``), then
``hash_password``; Flask-Security-Too's own ``verify_password`` then accepts it, refuses a
wrong one, and says whether it would accept it under another ``SECURITY_PASSWORD_SALT``.
"""

from __future__ import annotations

import warnings
from typing import Any

import bcrypt
import flask_security
import passlib
from flask import Flask
from flask_security import Security, SQLAlchemyUserDatastore, hash_password, verify_password
from flask_security.models import fsqla_v3 as fsqla
from flask_security.utils import _security  # type: ignore[attr-defined]
from flask_sqlalchemy import SQLAlchemy

warnings.simplefilter("ignore")

SALT = "fs-salt-1234567890"
WRONG = "Tr0ub4dor&3"
#: Cheap parameters, so the tests stay instant; the few "default" vectors use none.
CHEAP = {
    "argon2__rounds": 1,
    "argon2__memory_cost": 256,
    "argon2__parallelism": 1,
    "bcrypt__rounds": 4,
    "pbkdf2_sha512__rounds": 1000,
    "pbkdf2_sha256__rounds": 1000,
}
PASSWORD = "correct horse battery staple"
#: Composed characters and a ligature: NFKD (Flask-Security-Too's default) changes it.
UNICODE = "Cr\u00e8me br\u00fbl\u00e9e \ufb01 \u5bc6\u7801 \U0001f511"
LONG = "0123456789" * 10  # 100 bytes: bcrypt reads 72
LONG_UNICODE = "\u00e9" * 50  # 100 bytes as UTF-8, 150 once NFKD-decomposed

db = SQLAlchemy()
fsqla.FsModels.set_db_info(db)


class Role(db.Model, fsqla.FsRoleMixin):  # type: ignore[misc, name-defined]
    pass


class User(db.Model, fsqla.FsUserMixin):  # type: ignore[misc, name-defined]
    pass


def _verify(config: dict[str, Any], password: str, stored: str) -> bool | str:
    app = Flask(__name__)
    app.config.update(config)
    db.init_app(app)
    Security(app, SQLAlchemyUserDatastore(db, User, Role))
    with app.app_context():
        try:
            return bool(verify_password(_security.password_util.normalize(password), stored))
        except ValueError as exc:  # bcrypt 5 refuses more than 72 bytes
            return f"raises ValueError: {exc}"


def make(
    scheme: str,
    password: str,
    *,
    single_hash: object = "unset",
    salt: str = SALT,
    form: str | None = "NFKD",
    cheap: bool = True,
) -> str:
    config: dict[str, Any] = {
        "SECRET_KEY": "x" * 32,
        "SQLALCHEMY_DATABASE_URI": "sqlite://",
        "SECURITY_PASSWORD_SALT": salt,
        "SECURITY_PASSWORD_HASH": scheme,
        "SECURITY_PASSWORD_NORMALIZE_FORM": form,
    }
    if single_hash != "unset":
        config["SECURITY_PASSWORD_SINGLE_HASH"] = single_hash
    if cheap:
        config["SECURITY_PASSWORD_HASH_PASSLIB_OPTIONS"] = CHEAP
    app = Flask(__name__)
    app.config.update(config)
    db.init_app(app)
    Security(app, SQLAlchemyUserDatastore(db, User, Role))
    with app.app_context():
        stored = hash_password(_security.password_util.normalize(password))
    right = _verify(config, password, stored)
    if right is not True:  # Flask-Security-Too cannot check it; bcrypt can, on 72 bytes
        assert bcrypt.checkpw(password.encode()[:72], stored.encode())
    assert _verify(config, WRONG, stored) is False
    other_salt = _verify({**config, "SECURITY_PASSWORD_SALT": salt + "x"}, password, stored)
    if isinstance(other_salt, str):  # it raised again: hashed once, the salt plays no part
        other_salt = right is not True
    options = "" if single_hash == "unset" else f", single_hash={single_hash!r}"
    if salt != SALT:
        options += f", salt={salt!a}"
    if form != "NFKD":
        options += f", normalize_form={form!r}"
    return (
        f"    Vector({scheme!r}, {password!a}, {stored!r},"
        f" other_salt_matches={other_salt is True}{options},"
        f" flask_security_verifies={right!r}),"
    )


def main() -> None:
    rows: list[str] = []
    for scheme in ("argon2", "bcrypt", "pbkdf2_sha512", "pbkdf2_sha256"):
        for single_hash in ("unset", True):
            rows.append(make(scheme, PASSWORD, single_hash=single_hash))
            rows.append(make(scheme, UNICODE, single_hash=single_hash))
    for single_hash in ("unset", True):
        rows.append(make("bcrypt", LONG, single_hash=single_hash))
    rows.append(make("bcrypt", LONG_UNICODE))
    # Flask-Security-Too's default parameters (passlib's): argon2 64 MiB t=3 p=4, bcrypt 12,
    # pbkdf2_sha512 25000 rounds.
    for scheme in ("argon2", "bcrypt", "pbkdf2_sha512"):
        rows.append(make(scheme, PASSWORD, cheap=False))
    rows.append(make("argon2", UNICODE, salt="s\u00e4lz-\u00df"))
    rows.append(make("pbkdf2_sha512", UNICODE, form=None))
    rows.append(make("bcrypt", UNICODE, form="NFC"))
    rows.append(make("pbkdf2_sha256", PASSWORD, single_hash=["pbkdf2_sha256"]))
    rows.append(make("argon2", PASSWORD, single_hash=["pbkdf2_sha256"]))
    rows.append(make("argon2", PASSWORD, single_hash=False))
    print(HEADER.format(fst=flask_security.__version__, passlib=passlib.__version__))
    print("\n".join(rows))
    print(")")


HEADER = '''"""Hashes made by Flask-Security-Too {fst} (passlib {passlib}), literal test data.

Made by ``make_flask_security_vectors.py`` (run it in an environment with
Flask-Security-Too to make them again); the project does not depend on Flask-Security-Too.
Each is ``hash_password`` of the password after Flask-Security-Too's normalisation, with
``SECURITY_PASSWORD_SALT`` = ``salt`` and the given ``SECURITY_PASSWORD_SINGLE_HASH`` and
``SECURITY_PASSWORD_NORMALIZE_FORM`` (``UNSET``: not set, Flask-Security-Too's default).
Flask-Security-Too's own ``verify_password`` accepted it (``flask_security_verifies``),
refused ``WRONG``, and accepted it under another salt exactly when ``other_salt_matches``.
With bcrypt 5, Flask-Security-Too cannot check a single-hashed bcrypt password longer
than 72 bytes at all (it raises); the hash is of its first 72 bytes, which bcrypt checks.
(Nor can it hash a single-hashed bcrypt password whose first 72 characters are more than
72 bytes, so there is no such vector.)
"""

from __future__ import annotations

from typing import NamedTuple

SALT = "fs-salt-1234567890"
WRONG = "Tr0ub4dor&3"
UNSET = "unset"


class Vector(NamedTuple):
    scheme: str
    password: str
    stored: str
    other_salt_matches: bool
    single_hash: object = UNSET
    salt: str = SALT
    normalize_form: str | None = "NFKD"
    flask_security_verifies: bool | str = True


VECTORS: tuple[Vector, ...] = ('''


if __name__ == "__main__":
    main()
