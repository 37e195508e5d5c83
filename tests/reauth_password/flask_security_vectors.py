"""Hashes made by Flask-Security-Too 5.9.2 (passlib 1.9.4), literal test data.

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


VECTORS: tuple[Vector, ...] = (
    Vector(
        "argon2",
        "correct horse battery staple",
        "$argon2id$v=19$m=256,t=1,p=1$0DrHWKs1JoSwlrI2BkBoLQ$/C/EDq+wJEdnrRuO4+phjYT7ALPwx5LS6JLr7fiUt98",
        other_salt_matches=False,
        flask_security_verifies=True,
    ),
    Vector(
        "argon2",
        "Cr\xe8me br\xfbl\xe9e \ufb01 \u5bc6\u7801 \U0001f511",
        "$argon2id$v=19$m=256,t=1,p=1$yvmfMwYAoFQqBeB8LyWkVA$w7dhOw7QEd9E038pTQVmA7lxY/8wlWvSUsZYFA96kOk",
        other_salt_matches=False,
        flask_security_verifies=True,
    ),
    Vector(
        "argon2",
        "correct horse battery staple",
        "$argon2id$v=19$m=256,t=1,p=1$1xpDSEkJIUSIcW7Nee/dmw$47ZmdvUbU+NeTeAaMgjDG5sUfuuUmFgTTuIepdpADVU",
        other_salt_matches=True,
        single_hash=True,
        flask_security_verifies=True,
    ),
    Vector(
        "argon2",
        "Cr\xe8me br\xfbl\xe9e \ufb01 \u5bc6\u7801 \U0001f511",
        "$argon2id$v=19$m=256,t=1,p=1$/3+vNSZkzNl77/0f4/zf+w$fq/Pyio8nXkNsUNYIAL7GwfHncNG5mXUeIhBP4qmeBU",
        other_salt_matches=True,
        single_hash=True,
        flask_security_verifies=True,
    ),
    Vector(
        "bcrypt",
        "correct horse battery staple",
        "$2b$04$n/5AZ86xDIoE25qwAhEoxOuQMpmD5zaK57g4i/E2G0BdCwofMgUSe",
        other_salt_matches=False,
        flask_security_verifies=True,
    ),
    Vector(
        "bcrypt",
        "Cr\xe8me br\xfbl\xe9e \ufb01 \u5bc6\u7801 \U0001f511",
        "$2b$04$So7epPXvIhOQvrpltA.k8.18/xqp.Xrr0hqopfvVJpZujI946//1y",
        other_salt_matches=False,
        flask_security_verifies=True,
    ),
    Vector(
        "bcrypt",
        "correct horse battery staple",
        "$2b$04$.RaNW9bF3M6ObWO8gf4APugKuR1dVzarS.1Vovqnf1UCbu2JKsObu",
        other_salt_matches=True,
        single_hash=True,
        flask_security_verifies=True,
    ),
    Vector(
        "bcrypt",
        "Cr\xe8me br\xfbl\xe9e \ufb01 \u5bc6\u7801 \U0001f511",
        "$2b$04$sBtalVs6DgPJDFFOkYyqE.T5w9L2Nkw4NVT8NEcWnXSiKe.5b5rDC",
        other_salt_matches=True,
        single_hash=True,
        flask_security_verifies=True,
    ),
    Vector(
        "pbkdf2_sha512",
        "correct horse battery staple",
        "$pbkdf2-sha512$1000$eG9tTcmZc47xXus9Z0xJiQ$qzAL.Xm6w3pdDVcAxql2ZY99TnolKlsPOrpzYOE/1jWrbQWA90dPa5EiivikehCvEZeR25YkzSIAaTOgJdZaag",
        other_salt_matches=False,
        flask_security_verifies=True,
    ),
    Vector(
        "pbkdf2_sha512",
        "Cr\xe8me br\xfbl\xe9e \ufb01 \u5bc6\u7801 \U0001f511",
        "$pbkdf2-sha512$1000$CmHMOce4NyZEaM3ZGyMEwA$JHzLvFAHqS4ZQY2C.wuDaA9cwztwV3SHzajjS05s0TDTySST0kv3ynKo8rR4NTvoDOyCu.9Ie8E9/jE8f.A6BA",
        other_salt_matches=False,
        flask_security_verifies=True,
    ),
    Vector(
        "pbkdf2_sha512",
        "correct horse battery staple",
        "$pbkdf2-sha512$1000$itH6P4cw5pxzbm1tzZmTMg$VmzLbv52xGc.NaDyaor5ts5orSpZPFiMTYUwI64pM4W/wBOZXylER2ALtHZAtvXyKDXuplFtZcvuQ1vG4ZAnJw",
        other_salt_matches=True,
        single_hash=True,
        flask_security_verifies=True,
    ),
    Vector(
        "pbkdf2_sha512",
        "Cr\xe8me br\xfbl\xe9e \ufb01 \u5bc6\u7801 \U0001f511",
        "$pbkdf2-sha512$1000$6p0zBgAgBGBMSYlRau0dYw$bGI37ywIAlD3YX9jibaWvVWFFH5eTLxD/dwiUJHeo20RI/lscp/rGL9ZqFazwOjAiPdIKmmFfsuNd/wefdwqFg",
        other_salt_matches=True,
        single_hash=True,
        flask_security_verifies=True,
    ),
    Vector(
        "pbkdf2_sha256",
        "correct horse battery staple",
        "$pbkdf2-sha256$1000$C0FoDSHkfA/BGMNY611LqQ$Yj2Zzhot3xKkcjgvbvSLKEJ7HsXK15ruR0ccflhP80s",
        other_salt_matches=False,
        flask_security_verifies=True,
    ),
    Vector(
        "pbkdf2_sha256",
        "Cr\xe8me br\xfbl\xe9e \ufb01 \u5bc6\u7801 \U0001f511",
        "$pbkdf2-sha256$1000$IyREqNVaC8GYk/K.d651jg$RU6.XMDRF.z458tFrUO1Mjo6nBvT4OA6FINdwxSBVRg",
        other_salt_matches=False,
        flask_security_verifies=True,
    ),
    Vector(
        "pbkdf2_sha256",
        "correct horse battery staple",
        "$pbkdf2-sha256$1000$o3ROaU0pJQRgbA1hTCkl5A$UxxY7c25VarT16MTar3t/gHSsgY0damWzyvRdybQr5s",
        other_salt_matches=True,
        single_hash=True,
        flask_security_verifies=True,
    ),
    Vector(
        "pbkdf2_sha256",
        "Cr\xe8me br\xfbl\xe9e \ufb01 \u5bc6\u7801 \U0001f511",
        "$pbkdf2-sha256$1000$aE1JaQ1hbI0RYsyZs1aKcQ$AQOKaT/aJSlAT4uCfy4n0Zh.g7ilKlClDd/QaZ86fLA",
        other_salt_matches=True,
        single_hash=True,
        flask_security_verifies=True,
    ),
    Vector(
        "bcrypt",
        "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
        "$2b$04$AZ4NIUg.zMjTXdTXiXN4g.FJLoFWr6kB2rMoxTYLOcYejBm5HjzLm",
        other_salt_matches=False,
        flask_security_verifies=True,
    ),
    Vector(
        "bcrypt",
        "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
        "$2b$04$H.1q4iiJbJqrfxh55ijovOhGutaxNHCGgobJtejUmPqjpy0pnyS.O",
        other_salt_matches=True,
        single_hash=True,
        flask_security_verifies="raises ValueError: password cannot be longer than 72 bytes, truncate manually if necessary (e.g. my_password[:72])",
    ),
    Vector(
        "bcrypt",
        "\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9",
        "$2b$04$2lr7owVKL7hU7kZDe35k5e1e209hFNfyn0VK79nSjTkc3iBQN8i2G",
        other_salt_matches=False,
        flask_security_verifies=True,
    ),
    Vector(
        "argon2",
        "correct horse battery staple",
        "$argon2id$v=19$m=65536,t=3,p=4$cq619r63dg7h/D+H8P5fiw$gdycCxM7MEocic0Mq6uHnspN6eNU/3GjC6RErV3Nbac",
        other_salt_matches=False,
        flask_security_verifies=True,
    ),
    Vector(
        "bcrypt",
        "correct horse battery staple",
        "$2b$12$4QEDME3ry01HXNGvKxQINO221fDFkKXhGr6yq0d9sIlBUVanH.vyu",
        other_salt_matches=False,
        flask_security_verifies=True,
    ),
    Vector(
        "pbkdf2_sha512",
        "correct horse battery staple",
        "$pbkdf2-sha512$25000$oxSCMAYgZGyttXYO4TxHKA$w5zVkH1tm/.Rdh7ckSNSh7XNiRj/XB.IkDy.VVVmriZt6//VhJZ895g9mzfX3mAgtsNL/z50wQ8j.CF3eSheeQ",
        other_salt_matches=False,
        flask_security_verifies=True,
    ),
    Vector(
        "argon2",
        "Cr\xe8me br\xfbl\xe9e \ufb01 \u5bc6\u7801 \U0001f511",
        "$argon2id$v=19$m=256,t=1,p=1$3/vfG8MYw3hP6V3LWWtt7Q$5VmYpBF/hIxDCooeNA41CFNJbdVyKEIvJnshQB5y8UY",
        other_salt_matches=False,
        salt="s\xe4lz-\xdf",
        flask_security_verifies=True,
    ),
    Vector(
        "pbkdf2_sha512",
        "Cr\xe8me br\xfbl\xe9e \ufb01 \u5bc6\u7801 \U0001f511",
        "$pbkdf2-sha512$1000$sBaidO6dU8rZ.7.3di7lfA$3O247H/k7KFvmMu/XNXl2b3J2Rs7c2i8mGIN/SIUskG5gfeVdCNO1xejVpc2EjDEJ8FGUDMJen3uV/.b5k.rig",
        other_salt_matches=False,
        normalize_form=None,
        flask_security_verifies=True,
    ),
    Vector(
        "bcrypt",
        "Cr\xe8me br\xfbl\xe9e \ufb01 \u5bc6\u7801 \U0001f511",
        "$2b$04$5lQQ5Y69uGPMLqgGW6JQ2OsxPQsh/KU19De5EwlJBVLHS4vRFnUiq",
        other_salt_matches=False,
        normalize_form="NFC",
        flask_security_verifies=True,
    ),
    Vector(
        "pbkdf2_sha256",
        "correct horse battery staple",
        "$pbkdf2-sha256$1000$0Jqz1hrD.J8TgnDuvfe.9w$wy3YIUFSFpxnKlVbNa7gASGVf/HOm70ToUc9tHQj06I",
        other_salt_matches=True,
        single_hash=["pbkdf2_sha256"],
        flask_security_verifies=True,
    ),
    Vector(
        "argon2",
        "correct horse battery staple",
        "$argon2id$v=19$m=256,t=1,p=1$AuA85zxnrBXiHOP8v/feGw$bq5zKLOZNkpXsF/mheO0k6adafVxWB9wUiqPiUg+ml4",
        other_salt_matches=False,
        single_hash=["pbkdf2_sha256"],
        flask_security_verifies=True,
    ),
    Vector(
        "argon2",
        "correct horse battery staple",
        "$argon2id$v=19$m=256,t=1,p=1$HON8b+3dW2sNwZgzZozR+g$6WrfpR8Xt8O1Upi0IpvuedzM45YrhkVXpQ+qm7hdYF4",
        other_salt_matches=False,
        single_hash=False,
        flask_security_verifies=True,
    ),
)
