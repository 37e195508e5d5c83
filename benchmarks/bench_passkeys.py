"""A passkey assertion: stepup's verification against python-fido2's own verify call.

stepup's side is ``Passkeys.finish_authentication`` on the memory store (so no store
round trip is in it): parsing the browser's JSON, claiming the challenge and checking
it is this user's and session's, finding the credential among the user's, python-fido2's
checks and signature, the counter rule and its compare-and-set, the event-free result.
The peer is ``Fido2Server.authenticate_complete`` with the state and the credential in
hand: the checks and the signature alone. Both verify ES256 assertions made beforehand
(untimed) by the test kit's software authenticator, each for its own challenge.
Target: stepup's bookkeeping costs at most 1.3x. Every result is checked after the run.

    .venv/bin/python benchmarks/bench_passkeys.py [--quick] [--markdown]
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import scale
from fido2.server import Fido2Server
from fido2.webauthn import AttestedCredentialData, PublicKeyCredentialRpEntity
from harness import compare
from report import Row, Target, cli

from stepup.adapters.storage.memory import MemoryStore
from stepup.passkeys import Passkeys, RelyingParty
from stepup.subject import Subject
from stepup.testing.webauthn import SoftAuthenticator

ORIGIN = "https://app.example.com"
RP = RelyingParty(id="example.com", name="Example", origins=(ORIGIN,))
ALICE = Subject("alice", "session-1")


def _ours(calls: int) -> tuple[Passkeys, list[dict[str, Any]]]:
    """A registered passkey and ``calls`` assertions, each for a challenge in the store."""
    passkeys = Passkeys(MemoryStore(), RP)
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    assert passkeys.finish_registration(ALICE, key.create(passkeys.begin_registration(ALICE, "a")))
    responses = []
    for _ in range(calls):
        options = passkeys.begin_authentication(ALICE)
        assert options is not None
        responses.append(key.get(options))
    return passkeys, responses


def _theirs(calls: int) -> tuple[Fido2Server, AttestedCredentialData, list[tuple[Any, Any]]]:
    """The same authenticator kind, registered through python-fido2 alone."""
    server = Fido2Server(
        PublicKeyCredentialRpEntity(id=RP.id, name=RP.name), verify_origin=RP.allows
    )
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    options, state = server.register_begin(
        {"id": b"alice", "name": "a", "displayName": "a"}, user_verification="required"
    )
    credential = server.register_complete(state, key.create(dict(options))).credential_data
    assert credential is not None
    pairs = []
    for _ in range(calls):
        options, state = server.authenticate_begin([credential], user_verification="required")
        pairs.append((state, key.get(dict(options))))
    return server, credential, pairs


def rows(quick: bool) -> list[Row]:
    size = scale(quick, rounds=20, inner=200)
    passkeys, responses = _ours(size.calls)
    server, credential, pairs = _theirs(size.calls)
    ours_results: list[Any] = []
    theirs_results: list[Any] = []
    next_response, next_pair = iter(responses).__next__, iter(pairs).__next__
    finish, complete = passkeys.finish_authentication, server.authenticate_complete

    def ours() -> None:
        ours_results.append(finish(ALICE, next_response()))

    def theirs() -> None:
        state, response = next_pair()
        theirs_results.append(complete(state, [credential], response))

    result = compare(
        "finish_authentication (ES256, memory store)",
        ("stepup", ours),
        ("python-fido2 authenticate_complete", theirs),
        rounds=size.rounds,
        inner=size.inner,
        warmup=size.warmup,
    )
    assert len(ours_results) == size.calls, "stepup did not verify every assertion"
    refused = [r for r in ours_results if not r]
    assert not refused, f"{len(refused)} assertions were refused: {refused[:3]}"
    assert all(r.credential_id == credential.credential_id for r in theirs_results)
    stored = passkeys.registered("alice")[0]
    assert stored.sign_count == 1 + size.calls, "every counter was recorded"
    return [
        Row.compared(
            "Passkey assertion, verification and bookkeeping",
            result.label,
            result,
            target=Target("at_most", 1.3),
        )
    ]


def main(argv: Sequence[str] | None = None) -> int:
    return cli(__doc__.splitlines()[0], rows, argv)


if __name__ == "__main__":
    sys.exit(main())
