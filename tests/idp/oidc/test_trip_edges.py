"""The OIDC re-authentication client at its edges: the code proved at the start rides
with the trip's own state; an error response is held to RFC 9207's ``iss`` check like a
success; and a provider's answers are read within their bound, compressed or not."""

from __future__ import annotations

import json
import threading
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idp.oidc.harness import ALICE, Provider
from idp.oidc.useragent import UserAgent, query_of
from stepup.adapters.idp.oidc import (
    AsyncOIDCReauth,
    OIDCProviderConfig,
    OIDCReason,
    OIDCReauth,
    ProviderUnavailableError,
)
from stepup.adapters.idp.oidc.resource import (
    MAX_JWKS_BYTES,
    async_http_jwks_fetcher,
    http_jwks_fetcher,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import MalformedInputError
from stepup.subject import Identity, LoginMethod, Subject
from stepup.tokens import TokenUnavailableError


def _state(url: str) -> str:
    return query_of(url)["state"]


# the code's proof rides with the trip -----------------------------------------------------


@pytest.mark.oidc
def test_the_code_proof_comes_back_on_its_own_trip_only(
    reauth: OIDCReauth, alice: Subject, agent: UserAgent
) -> None:
    """A forged answer (no trip, or another trip's state) carries no proof and uses none
    up; the answer to the trip the code was proved for carries it, once."""
    proved = reauth.start(alice, return_to="/x", otp_proved=True)
    plain = reauth.start(alice, return_to="/y")

    forged = reauth.complete(alice, {"state": "forged", "code": "x"})
    assert (forged.reason, forged.otp_proved) == (OIDCReason.UNKNOWN_STATE, False)

    other = reauth.complete(alice, agent.authorize(plain, login=ALICE[0], password=ALICE[1]))
    assert other.ok
    assert not other.otp_proved

    params = agent.authorize(proved, login=ALICE[0], password=ALICE[1])
    answer = reauth.complete(alice, params)
    assert answer.ok
    assert answer.otp_proved
    assert reauth.complete(alice, params).otp_proved is False  # used up with its state


@pytest.mark.oidc
def test_a_refused_answer_to_a_proved_trip_grants_nothing(
    reauth: OIDCReauth, alice: Subject
) -> None:
    state = _state(reauth.start(alice, return_to="/x", otp_proved=True))
    cancelled = reauth.complete(
        alice, {"state": state, "error": "access_denied", "iss": reauth.config.issuer}
    )
    assert cancelled.reason is OIDCReason.PROVIDER_ERROR
    assert not cancelled.ok  # the views record otp only on ok


@pytest.mark.oidc
def test_a_stored_proof_that_is_not_a_bool_matches_no_trip(
    reauth: OIDCReauth, alice: Subject, store: MemoryStore
) -> None:
    state = _state(reauth.start(alice, return_to="/x", otp_proved=True))
    challenge = store.take_challenge(state, 0.0)
    assert challenge is not None
    store.put_challenge(replace(challenge, data={**challenge.data, "otp_proved": "yes"}))
    params = {"state": state, "code": "x", "iss": reauth.config.issuer}
    assert reauth.complete(alice, params).reason is OIDCReason.UNKNOWN_STATE


@pytest.mark.oidc
def test_start_takes_only_a_bool_for_the_proof(reauth: OIDCReauth, alice: Subject) -> None:
    with pytest.raises(MalformedInputError):
        reauth.start(alice, return_to="/", otp_proved="yes")  # type: ignore[arg-type]


# RFC 9207 on error responses --------------------------------------------------------------


@pytest.mark.oidc
@pytest.mark.parametrize("iss", ["https://attacker.example", None, ""])
def test_an_error_response_from_another_issuer_is_a_mix_up(
    reauth: OIDCReauth, alice: Subject, iss: str | None
) -> None:
    """The provider announces ``authorization_response_iss_parameter_supported``: an
    error answer naming another issuer, or none, is not its error (RFC 9207, 2.4)."""
    state = _state(reauth.start(alice, return_to="/x", action="api_key.read"))
    params = {"state": state, "error": "login_required"} | ({} if iss is None else {"iss": iss})
    outcome = reauth.complete(alice, params)
    assert (outcome.reason, outcome.detail, outcome.error) == (
        OIDCReason.INVALID_TOKEN,
        "iss_parameter",
        None,
    )
    assert (outcome.return_to, outcome.action) == ("/x", "api_key.read")  # this trip's
    assert reauth.complete(alice, params).reason is OIDCReason.UNKNOWN_STATE  # used up


@pytest.mark.oidc
def test_an_error_response_naming_this_issuer_is_its_error(
    reauth: OIDCReauth, alice: Subject
) -> None:
    state = _state(reauth.start(alice, return_to="/x"))
    params = {"state": state, "error": "access_denied", "iss": reauth.config.issuer}
    outcome = reauth.complete(alice, params)
    assert (outcome.reason, outcome.error) == (OIDCReason.PROVIDER_ERROR, "access_denied")


# answers read within their bound ----------------------------------------------------------

#: The bound on a provider's answer, as documented (``protocol.MAX_PROVIDER_BYTES``).
MAX_PROVIDER_BYTES = 512 * 1024
#: Decoded size of the compressed answers: far over every bound, a few hundred KiB sent.
BOMB_BYTES = 256 << 20
#: What reading a refused answer may cost: the bound, a chunk, and the client's own.
MEMORY_BOUND = 4 * MAX_PROVIDER_BYTES


def _gzip_bomb() -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * (1 << 20)
    return b"".join(packer.compress(block) for _ in range(BOMB_BYTES >> 20)) + packer.flush()


class _Answers(BaseHTTPRequestHandler):
    """Every GET and POST gets ``body`` with ``headers_out``."""

    body: bytes = b""
    headers_out: dict[str, str] = {}

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        self.send_response(200)
        for name, value in self.headers_out.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(self.body)
        except OSError:
            return  # the client stopped reading: what it is meant to do

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    compressed = _gzip_bomb()
    assert len(compressed) < MAX_PROVIDER_BYTES  # a declared length would not stop it
    return compressed


@pytest.fixture
def answers() -> Iterator[Callable[[bytes, dict[str, str]], str]]:
    """A loopback server; ``serve(body, headers)`` sets its answer and returns its URL."""
    handler = type("Handler", (_Answers,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def serve(body: bytes, headers: dict[str, str]) -> str:
        handler.body, handler.headers_out = body, headers
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    server.shutdown()
    server.server_close()


def _subject(issuer: str) -> Subject:
    return Subject("u-alice", "s1", Identity(LoginMethod.OIDC, issuer, "alice", "op"))


def _config(issuer: str) -> OIDCProviderConfig:
    return OIDCProviderConfig(
        issuer=issuer, client_id="app", redirect_uri="http://127.0.0.1:8000/callback"
    )


def _peak_while(call: Callable[[], object]) -> tuple[BaseException | None, int]:
    """What ``call`` raised, and the most memory it held at once."""
    tracemalloc.start()
    try:
        call()
    except Exception as exc:
        raised: BaseException | None = exc
    else:
        raised = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return raised, peak


GZIP = {"Content-Encoding": "gzip", "Content-Type": "application/json"}


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked-close"])
def test_a_compressed_answer_too_large_once_decoded_is_refused_within_the_bound(
    answers: Callable[[bytes, dict[str, str]], str], bomb: bytes, declared: bool
) -> None:
    headers = GZIP | ({"Content-Length": str(len(bomb))} if declared else {})
    issuer = answers(bomb, headers)
    with httpx.Client() as http:
        reauth = OIDCReauth(_config(issuer), MemoryStore(), http=http)
        raised, peak = _peak_while(lambda: reauth.start(_subject(issuer), return_to="/"))
    assert isinstance(raised, ProviderUnavailableError)
    assert str(raised) == "discovery: answer too large"
    assert peak < MEMORY_BOUND, f"held {peak >> 20} MiB"


async def test_the_async_client_reads_within_the_bound_too(
    answers: Callable[[bytes, dict[str, str]], str], bomb: bytes
) -> None:
    issuer = answers(bomb, GZIP | {"Content-Length": str(len(bomb))})
    async with httpx.AsyncClient() as http:
        reauth = AsyncOIDCReauth(_config(issuer), MemoryStore(), http=http)
        tracemalloc.start()
        try:
            with pytest.raises(ProviderUnavailableError, match="answer too large"):
                await reauth.start(_subject(issuer), return_to="/")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"held {peak >> 20} MiB"


def test_a_declared_length_over_the_bound_is_refused_unread(
    answers: Callable[[bytes, dict[str, str]], str],
) -> None:
    body = b" " * (8 * MAX_PROVIDER_BYTES)
    issuer = answers(body, {"Content-Length": str(len(body))})
    with httpx.Client() as http:
        reauth = OIDCReauth(_config(issuer), MemoryStore(), http=http)
        raised, peak = _peak_while(lambda: reauth.start(_subject(issuer), return_to="/"))
    assert isinstance(raised, ProviderUnavailableError)
    assert peak < MAX_PROVIDER_BYTES  # not even the bound's worth was read


def test_an_unknown_content_coding_is_refused(
    answers: Callable[[bytes, dict[str, str]], str],
) -> None:
    issuer = answers(b"{}", {"Content-Encoding": "br", "Content-Length": "2"})
    with httpx.Client() as http, pytest.raises(ProviderUnavailableError, match="coding"):
        OIDCReauth(_config(issuer), MemoryStore(), http=http).start(_subject(issuer), return_to="/")


def test_the_resource_servers_key_fetch_shares_the_bounded_reader(
    answers: Callable[[bytes, dict[str, str]], str], bomb: bytes
) -> None:
    url = answers(bomb, GZIP)
    with httpx.Client() as http:
        raised, peak = _peak_while(http_jwks_fetcher(f"{url}/jwks", http))
    assert isinstance(raised, TokenUnavailableError)
    assert peak < 4 * MAX_JWKS_BYTES, f"held {peak >> 20} MiB"


async def test_the_async_key_fetch_shares_it_too(
    answers: Callable[[bytes, dict[str, str]], str], bomb: bytes
) -> None:
    url = answers(bomb, GZIP)
    async with httpx.AsyncClient() as http:
        with pytest.raises(TokenUnavailableError, match="answer too large"):
            await async_http_jwks_fetcher(f"{url}/jwks", http)()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=st.dictionaries(st.text(max_size=8), st.text(max_size=64), max_size=20))
def test_a_compressed_answer_within_the_bound_is_read_whole(document: dict[str, str]) -> None:
    """gzip or deflate, the answer a provider sends within the bound is the one parsed
    (here through an in-memory transport that hands over the raw bytes as a stream)."""
    raw = json.dumps({"keys": [], **document}).encode()
    for coding, wbits in (("gzip", 31), ("deflate", 15)):
        packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
        packed = packer.compress(raw) + packer.flush()

        def handle(request: httpx.Request, packed: bytes = packed, coding: str = coding) -> Any:
            stream = httpx.ByteStream(packed)
            headers = {"Content-Encoding": coding}
            return httpx.Response(200, headers=headers, stream=_Chunks(stream))

        with httpx.Client(transport=httpx.MockTransport(handle)) as http:
            assert dict(http_jwks_fetcher("https://op.example/jwks", http)()) == json.loads(raw)


class _Chunks(httpx.SyncByteStream):
    """A stream the transport has not read: bytes in small pieces, as from a socket."""

    def __init__(self, stream: httpx.ByteStream) -> None:
        self._data = b"".join(stream)

    def __iter__(self) -> Iterator[bytes]:
        for at in range(0, len(self._data), 7):
            yield self._data[at : at + 7]


@pytest.mark.oidc
def test_the_real_provider_is_still_read(provider: Provider, reauth: OIDCReauth) -> None:
    """Discovery, keys and tokens from the real provider pass through the bounded
    reader (it may compress them)."""
    assert reauth.start(_subject(provider.issuer), return_to="/").startswith(provider.issuer)
