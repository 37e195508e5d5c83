"""Validate JWT access tokens (RFC 9068) on the resource server: pure, no I/O.

:class:`AccessTokenValidator` checks the header ``typ`` (``at+jwt``), the algorithm
against an allow-list (``none`` and HMAC are never allowed: a resource server holds no
shared secret with the issuer), the signature against the issuer's published keys, the
issuer, the audience and the lifetime (``exp``, ``iat``, ``nbf`` with a small leeway, on
the injected clock). The keys come from an injected ``fetch_jwks`` (see
:func:`stepup.adapters.idp.oidc.http_jwks_fetcher`): they are cached for ``max_key_age``
(so a key the issuer withdrew stops verifying), and a token signed with an unknown
``kid`` triggers one refetch (the issuer may have rotated its keys), at most once per
``refetch_interval`` so a stream of forged ``kid`` values cannot turn the resource server
into a load generator against the issuer.

A fetch fails closed whatever goes wrong (the fetcher raises, the document is no JWKS,
the JOSE library chokes on an entry in a way nobody foresaw): one entry that cannot be
read is left out and the set's other keys still count; a document with no usable key at
all is a failed fetch. A failed fetch is :class:`TokenUnavailableError` (503) for the
request that made it, counts against ``refetch_interval``, and never makes the cached
keys younger: once they are older than ``max_key_age`` every token is unavailable until
a fetch succeeds. (Old keys serve only while another request's fetch is in flight, for at
most one more ``refetch_interval``; with no keys to serve, an async request waits for that
fetch, at most ``refetch_interval`` seconds, and a sync one is unavailable.) A fetch is
not stopped by the request that started it being cancelled: it goes on, and its answer
counts for the others; a fetch the process stops (``KeyboardInterrupt``, a green-thread
timeout) was no attempt and uses up no ``refetch_interval``.

What is refused before any signature is checked (RFC 8725): a token longer than 16 KiB,
anything but three base64url segments, a header that is not one JSON object or names a
parameter twice, ``crit``, and the header parameters that would bring their own key or
content (``jwk``, ``jku``, ``x5u``, ``x5c``, ``cty``, ``b64``, JWE parameters): keys come
from the issuer's JWKS only, and a nested token is never unwrapped. Keys are used only
for what they say (``use``/``key_ops``/``alg``/curve), RSA keys under 2048 bits never.

Sync (:meth:`~AccessTokenValidator.validate`) and async
(:meth:`~AccessTokenValidator.avalidate`) share one flow (:mod:`stepup._flow`). Only
``avalidate`` can await an async ``fetch_jwks``: ``validate``, when it has to fetch the
keys itself, raises :class:`~stepup.errors.ConfigurationError` (as ``BearerGuard.check``
refuses an async introspector), never a 503 for keys it could not read.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, Final, TypeGuard

from joserfc import jws
from joserfc.jwk import JWKRegistry, Key
from joserfc.util import urlsafe_b64decode

from ...._flow import Flow, run, run_async
from ....clock import Clock, system_clock
from ....errors import ConfigurationError, StepupError
from ....strict_json import strict_json_object
from ....tokens import (
    AccessToken,
    InvalidTokenError,
    TokenFault,
    TokenUnavailableError,
    scope_tokens,
)

__all__ = [
    "SAFE_ACCESS_TOKEN_ALGORITHMS",
    "AccessTokenValidator",
    "JwksFetcher",
    "claims_to_token",
    "parse_jwks_document",
    "strict_json_object",
]

#: Asymmetric signatures only.
SAFE_ACCESS_TOKEN_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})
_KEY_TYPES: Final = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
_CURVES: Final = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_EDWARDS: Final = frozenset({"Ed25519", "Ed448"})
_MIN_RSA_BITS: Final = 2048
_MAX_TOKEN_LENGTH: Final = 16 * 1024
_MAX_KID_LENGTH: Final = 256
_MAX_KEYS: Final = 100
_PRIVATE: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "k", "oth"})
#: Header parameters that bring a key, a key location, a content type (a nested token)
#: or a processing rule of their own: never honoured, so refused (RFC 8725 sections
#: 3.10, 2.8), as are JWE parameters (this is a JWS).
_REFUSED_HEADERS: Final = frozenset(
    {
        "crit",
        "b64",
        "jwk",
        "jku",
        "x5u",
        "x5c",
        "cty",
        "zip",
        "enc",
        "epk",
        "apu",
        "apv",
        "iv",
        "tag",
        "p2s",
        "p2c",
    }
)
#: The largest NumericDate accepted (9999-12-31T23:59:59Z): beyond is no date.
_MAX_DATE: Final = 253_402_300_799.0

JwksFetcher = Callable[[], Mapping[str, Any] | Awaitable[Mapping[str, Any]]]


def _usable(key: Key) -> bool:
    """A public key fit to verify signatures: RSA of at least 2048 bits, an EC key on
    a named curve, an Edwards-curve OKP key (not X25519/X448, which are for agreement);
    ``key_ops``, when given, must allow ``verify``."""
    ops = key.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return False
    alg = key.alg
    if alg is not None and alg not in SAFE_ACCESS_TOKEN_ALGORITHMS:
        return False
    if key.key_type == "RSA":
        return bool(getattr(key.raw_value, "key_size", 0) >= _MIN_RSA_BITS)
    if key.key_type == "OKP":
        return key.get("crv") in _EDWARDS
    return key.key_type == "EC"


def _rsa_bits(modulus: object) -> int:
    if not isinstance(modulus, str):
        return 0
    return int.from_bytes(urlsafe_b64decode(modulus.encode("ascii"))).bit_length()


def _import(entry: object) -> Key | None:
    """One JWKS entry as a public signing key, or None. An entry that cannot be read
    for any reason is left out: the JOSE library raises ``KeyError`` for an unknown
    curve, and may raise anything else for members of the wrong type, so every
    exception here means "not a key"; the set's other keys still count."""
    try:
        if not isinstance(entry, dict) or entry.get("use") not in (None, "sig"):
            return None
        if entry.get("kty") not in ("RSA", "EC", "OKP") or not isinstance(
            entry.get("kid", ""), str
        ):
            return None
        if entry["kty"] == "RSA" and _rsa_bits(entry.get("n")) < _MIN_RSA_BITS:
            return None  # weak: left out before the JOSE library warns about it
        public = {k: v for k, v in entry.items() if k not in _PRIVATE}
        key = JWKRegistry.import_key(public)
        return key if _usable(key) else None
    except Exception:  # whatever it is, this entry is no key
        return None


def parse_jwks_document(data: object) -> tuple[Key, ...]:
    """The public signing keys of a JWKS document; unreadable, encryption-only,
    symmetric, weak and agreement-only keys are left out, each on its own. No ``keys``
    list, more than 100 entries, or no usable key at all: :class:`TokenUnavailableError`
    (the validator counts that as a failed fetch). Raises nothing else."""
    try:
        entries = data.get("keys") if isinstance(data, Mapping) else None
    except Exception:  # a mapping that cannot be read is no JWKS
        entries = None
    if not isinstance(entries, list):
        raise TokenUnavailableError("jwks: no 'keys' list")
    if len(entries) > _MAX_KEYS:
        raise TokenUnavailableError(f"jwks: more than {_MAX_KEYS} keys")
    keys = tuple(key for key in map(_import, entries) if key is not None)
    if not keys:
        raise TokenUnavailableError("jwks: no usable signing key")
    return keys


def _key_type(alg: str) -> str | None:
    return "OKP" if alg == "EdDSA" else _KEY_TYPES.get(alg[:2])


def _fits(key: Key, alg: str) -> bool:
    """Could ``key`` have made an ``alg`` signature: its type, its own ``alg`` if it
    names one, the algorithm's curve."""
    if key.key_type != _key_type(alg) or key.alg not in (None, alg):
        return False
    curve = _CURVES.get(alg)
    return curve is None or key.get("crv") == curve


def _number(value: object) -> float | None:
    """A NumericDate (RFC 7519 section 2): a finite JSON number from 1970 to 9999."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int) and not 0 <= value <= _MAX_DATE:
        return None  # also keeps float() from overflowing on a huge integer
    number = float(value)
    return number if 0.0 <= number <= _MAX_DATE else None  # NaN fails both


def _verifies(model: Any, signing_input: bytes, signature: bytes, key: Key) -> bool:
    """Whether ``key`` made ``signature``; a key the JOSE library cannot verify with
    (whatever it raises) verified nothing."""
    try:
        return bool(model.verify(signing_input, signature, key))
    except Exception:
        return False


#: A failed key fetch, once, naming the cause (never a key or a token): the issuer's
#: trouble, not the store's, so not on ``stepup.store``.
logger = logging.getLogger("stepup.tokens")


class _FetchFailed:
    """A fetch that raised, answered as a value: the flow driver logs a raising call as a
    store outage, and the issuer is not the store."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


class _Attempt:
    """One fetch of the keys: when it was made (``now``), the attempt before it
    (``previous``, which counts again if this one is stopped before the issuer could
    answer) and, on the async path, the task that fetches, which requests finding no
    keys may wait for."""

    __slots__ = ("now", "previous", "task")

    def __init__(self, now: float, previous: float | None) -> None:
        self.now = now
        self.previous = previous
        self.task: asyncio.Task[TokenUnavailableError | None] | None = None


def _async_fetcher_error() -> ConfigurationError:
    """What :meth:`AccessTokenValidator.validate` raises for an async ``fetch_jwks``,
    which the sync path cannot await: how to put it right."""
    return ConfigurationError(
        "this AccessTokenValidator's fetch_jwks is async: use avalidate (BearerGuard's"
        " acheck, an async view), or give validate a sync fetcher (http_jwks_fetcher"
        " over httpx.Client)"
    )


class _Effects:
    """What the flow may ask for: fetch the issuer's JWKS and hand it to the validator's
    one reader (``_load``), which answers the error for the request, if any.

    A fetch stopped by a ``BaseException`` (``KeyboardInterrupt``, ``SystemExit``, a
    green-thread timeout such as gevent's) got no answer from the issuer: the attempt
    is abandoned, so it uses up no ``refetch_interval``, and the exception goes on. A
    fetcher that hands back an awaitable (async, which this path cannot await) is
    abandoned too, and answered as the :class:`ConfigurationError` it is."""

    def __init__(self, fetch: JwksFetcher, validator: AccessTokenValidator) -> None:
        self._fetch = fetch
        self._validator = validator

    def fetch_jwks(self, attempt: _Attempt) -> StepupError | None:
        document: object
        try:
            document = self._fetch()
        except Exception as exc:  # the app's fetcher: anything it raises is a failed fetch
            document = _FetchFailed(exc)
        except BaseException:
            self._validator._abandon(attempt)
            raise
        if inspect.isawaitable(document):
            # An async fetcher on the sync path: nothing here can await it. No attempt
            # was made of it (an async request fetches at once); the app's mistake is
            # answered as one, never as the issuer being unavailable.
            if inspect.iscoroutine(document):
                document.close()  # never awaited: say so once, not as a RuntimeWarning
            self._validator._abandon(attempt)
            return _async_fetcher_error()
        return self._validator._load(attempt, document)

    def await_keys(self, attempt: _Attempt, limit: float) -> None:
        """A sync request does not wait for another's fetch."""


class _AsyncEffects:
    """The same for :meth:`AccessTokenValidator.avalidate`: a sync fetcher (one over
    ``httpx.Client``) runs in a worker thread, so a slow issuer never stalls the event
    loop; an async one is awaited on the loop. Fetches are rare (the keys are cached),
    so the thread costs nothing a request feels.

    The fetch runs in a task of its own, which the request awaits shielded: a request
    cancelled meanwhile (its client went away, a timeout around it) stops waiting, and
    the fetch goes on and is read for the requests after it. A cancelled request is not
    the issuer failing: had the fetch stopped with it, the requests after it would find
    the ``refetch_interval`` used up and no keys (503 for up to a minute); had the
    interval been given back instead, a client that cancels each request could start
    fetch after fetch against the issuer."""

    def __init__(self, fetch: JwksFetcher, validator: AccessTokenValidator) -> None:
        self._fetch = fetch
        self._validator = validator
        self._running: set[asyncio.Task[TokenUnavailableError | None]] = set()

    async def fetch_jwks(self, attempt: _Attempt) -> TokenUnavailableError | None:
        task = asyncio.create_task(self._fetch_and_load(attempt))
        attempt.task = task
        self._running.add(task)  # the loop holds tasks weakly: kept until done
        task.add_done_callback(self._running.discard)
        return await asyncio.shield(task)

    async def _fetch_and_load(self, attempt: _Attempt) -> TokenUnavailableError | None:
        document: object
        try:
            if inspect.iscoroutinefunction(self._fetch):
                document = await self._fetch()
            else:
                document = await asyncio.to_thread(self._fetch)
                if inspect.isawaitable(document):
                    document = await document
        except Exception as exc:  # see _Effects.fetch_jwks
            document = _FetchFailed(exc)
        except BaseException:  # the fetch itself was cancelled (its loop is closing)
            self._validator._abandon(attempt)
            raise
        return self._validator._load(attempt, document)

    async def await_keys(self, attempt: _Attempt, limit: float) -> None:
        """Wait for the fetch in flight (on this loop), for at most ``limit`` seconds:
        never for a second fetch, and a request cancelled while it waits leaves the
        fetch alone."""
        task = attempt.task
        if task is None or task.get_loop() is not asyncio.get_running_loop():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                await asyncio.shield(task)


class AccessTokenValidator:
    """Validate RFC 9068 JWT access tokens from one issuer for one resource (audience)."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        fetch_jwks: JwksFetcher,
        clock: Clock = system_clock,
        algorithms: Collection[str] = ("RS256", "PS256", "ES256", "EdDSA"),
        leeway: float = 30.0,
        refetch_interval: float = 60.0,
        max_key_age: float = 3600.0,
    ) -> None:
        """``issuer`` and ``audience`` must match exactly (``aud`` may be a list that
        contains ``audience``). ``leeway``: seconds of clock skew tolerated on ``exp``,
        ``iat`` and ``nbf`` (at most 300). ``max_key_age``: how long fetched keys are
        trusted before they are fetched again (at least ``refetch_interval``). Bad
        settings raise :class:`ConfigurationError`."""
        if not isinstance(issuer, str) or not issuer:
            raise ConfigurationError("an access token validator needs the issuer")
        if not isinstance(audience, str) or not audience:
            raise ConfigurationError(
                "an access token validator needs the audience (this resource's identifier)"
            )
        if isinstance(algorithms, str):
            raise ConfigurationError("algorithms must be a list of algorithm names")
        chosen = frozenset(algorithms)
        unsafe = chosen - SAFE_ACCESS_TOKEN_ALGORITHMS
        if not chosen or unsafe:
            raise ConfigurationError(
                f"access token algorithms must be some of {sorted(SAFE_ACCESS_TOKEN_ALGORITHMS)}"
                + (f", not {sorted(map(str, unsafe))}" if unsafe else "")
            )
        if isinstance(leeway, bool) or not 0 <= leeway <= 300:
            raise ConfigurationError("leeway must be between 0 and 300 seconds")
        if isinstance(refetch_interval, bool) or not 0 < refetch_interval <= 86400:
            raise ConfigurationError("refetch_interval must be positive and at most a day")
        if isinstance(max_key_age, bool) or not refetch_interval <= max_key_age <= 7 * 86400:
            raise ConfigurationError(
                "max_key_age must be at least refetch_interval and at most a week"
            )
        if not callable(fetch_jwks):
            raise ConfigurationError("fetch_jwks must be callable")
        self.issuer = issuer
        self.audience = audience
        self.algorithms = chosen
        self.leeway = float(leeway)
        self.refetch_interval = float(refetch_interval)
        self.max_key_age = float(max_key_age)
        self.clock = clock
        self._effects = _Effects(fetch_jwks, self)
        self._async_effects = _AsyncEffects(fetch_jwks, self)
        # The verifying algorithm models, looked up once (each checks its key itself).
        self._models = {alg: jws.JWSRegistry.algorithms[alg] for alg in chosen}
        # (alg, kid) -> the keys that may verify it; (alg, None) for a token without kid.
        # Built from the JWKS only, so forged kid values never grow it.
        self._index: dict[tuple[str, str | None], tuple[Key, ...]] = {}
        self._fetched_at: float | None = None  # the last attempt
        self._loaded_at: float | None = None  # the last success
        # The latest fetch while it is in flight (one object per attempt: plain
        # assignments, so threads racing here can only lose the mark, failing closed).
        self._fetching: _Attempt | None = None

    def __repr__(self) -> str:
        return f"AccessTokenValidator(issuer={self.issuer!r}, audience={self.audience!r})"

    def validate(self, token: str) -> AccessToken:
        """The token's claims, or :class:`InvalidTokenError` naming the failed check
        (:class:`TokenUnavailableError` when the keys cannot be read). It cannot await
        an async ``fetch_jwks``: keys :meth:`avalidate` fetched serve it, and when it
        would have to fetch them itself, :class:`ConfigurationError` (never a 503)."""
        return run(self._flow(token), self._effects)

    async def avalidate(self, token: str) -> AccessToken:
        """:meth:`validate` for async code, with an async ``fetch_jwks`` (a sync one runs
        in a worker thread, off the event loop)."""
        return await run_async(self._flow(token), self._async_effects)

    # the keys ------------------------------------------------------------------------

    def _index_keys(self, keys: tuple[Key, ...]) -> dict[tuple[str, str | None], tuple[Key, ...]]:
        """(alg, kid) -> the keys that may verify it, and (alg, None) -> every key of
        that algorithm (for a token without ``kid``)."""
        index: dict[tuple[str, str | None], list[Key]] = {}
        for alg in self.algorithms:
            for key in keys:
                if _fits(key, alg):
                    index.setdefault((alg, None), []).append(key)
                    if key.kid is not None:
                        index.setdefault((alg, key.kid), []).append(key)
        return {where: tuple(found) for where, found in index.items()}

    def _refresh(self, now: float) -> Flow[bool]:
        """Fetch the keys unless an attempt was made within ``refetch_interval``; True
        if fetched. A failed fetch counts as an attempt too: no retry storm. A fetch
        stopped before the issuer could answer (the process interrupted) does not; a
        request cancelled while its fetch is awaited does not stop the fetch (see
        :class:`_AsyncEffects`), which counts, and whose keys serve the others."""
        if self._fetched_at is not None and 0 <= now - self._fetched_at < self.refetch_interval:
            return False
        attempt = _Attempt(now, self._fetched_at)
        self._fetched_at, self._fetching = now, attempt
        error = yield ("fetch_jwks", (attempt,))
        if error is not None:
            raise error
        return True

    def _refetch(self, now: float) -> Flow[bool]:
        """:meth:`_refresh` for a token the cached keys do not verify. An async fetcher
        on the sync path cannot fetch: the token is judged by the keys an async request
        fetched (a 401 for a ``kid`` the client made up, never the app's 500)."""
        try:
            return (yield from self._refresh(now))
        except ConfigurationError:
            return False

    def _load(self, attempt: _Attempt, document: object) -> TokenUnavailableError | None:
        """Read a fetched document into the cache: None, or the
        :class:`TokenUnavailableError` for the request that made the attempt. The one
        reader of a fetch's outcome, called when the fetch ends, whoever still waits.

        Whatever goes wrong (the fetcher raised, the document has no usable key, the
        JOSE library raises something unexpected) is an error naming the cause (a stepup
        error's message, else the exception's type: no key material, no token), logged
        here, once, and the cached keys are left as they were: a failed fetch never
        makes them younger, nor does a fetch that ends after a later one."""
        try:
            if isinstance(document, _FetchFailed):
                raise document.error
            index = self._index_keys(parse_jwks_document(document))
        except Exception as exc:
            # A stepup error's message names the step; anything else, its type only.
            cause = str(exc) if isinstance(exc, StepupError) else type(exc).__name__
            logger.warning("the issuer's keys could not be read: %s", cause)
            error = TokenUnavailableError(f"jwks: the issuer's keys could not be read ({cause})")
            error.__cause__ = exc
            return error
        finally:
            if self._fetching is attempt:
                self._fetching = None
        if self._loaded_at is None or attempt.now >= self._loaded_at:
            self._index = index
            self._loaded_at = attempt.now
        return None

    def _abandon(self, attempt: _Attempt) -> None:
        """A fetch stopped before the issuer could answer: no attempt was made of it, so
        the previous attempt's time counts again (unless a later attempt began)."""
        if self._fetching is attempt:
            self._fetching = None
            self._fetched_at = attempt.previous

    def _current_keys(self, now: float) -> Flow[None]:
        """Keys younger than ``max_key_age``, fetched again when older. Old keys serve
        only while another request's fetch is in flight, and for at most one more
        ``refetch_interval``; with none to serve, an async request waits for that fetch
        (at most ``refetch_interval`` seconds), a sync one does not. Otherwise (never
        fetched, or the last attempt within ``refetch_interval`` failed) the request
        fails closed: unavailable."""
        loaded = self._loaded_at
        if loaded is not None and 0 <= now - loaded < self.max_key_age:
            return
        if (yield from self._refresh(now)):
            return
        attempt = self._fetching
        if attempt is not None:
            if loaded is not None and 0 <= now - loaded < self.max_key_age + self.refetch_interval:
                return  # another request is fetching them right now
            yield ("await_keys", (attempt, self.refetch_interval))
            loaded = self._loaded_at
            if loaded is not None and 0 <= now - loaded < self.max_key_age:
                return
        raise TokenUnavailableError("jwks: the issuer's keys are not available")

    # the flow ------------------------------------------------------------------------

    def _flow(self, token: str) -> Flow[AccessToken]:
        signing_input, signature, header = self._parse(token)
        alg, kid = header["alg"], header.get("kid")
        now = self.clock()
        yield from self._current_keys(now)
        candidates = self._index.get((alg, kid), ())
        if not candidates and (yield from self._refetch(now)):
            candidates = self._index.get((alg, kid), ())  # the issuer may have rotated
        if not candidates:
            raise InvalidTokenError(TokenFault.UNKNOWN_KEY)
        model = self._models[alg]
        if not any(_verifies(model, signing_input, signature, key) for key in candidates):
            # The issuer may have put a new key under an old kid (OIDC Core 10.1.1 asks
            # for a new one, not every issuer obliges): one refetch, within the same
            # once-per-refetch_interval budget as an unknown kid's.
            if not (yield from self._refetch(now)):
                raise InvalidTokenError(TokenFault.SIGNATURE)
            candidates = self._index.get((alg, kid), ())
            if not any(_verifies(model, signing_input, signature, key) for key in candidates):
                raise InvalidTokenError(TokenFault.SIGNATURE)
        try:
            payload = strict_json_object(urlsafe_b64decode(signing_input.rpartition(b".")[2]))
        except (ValueError, UnicodeError):
            raise InvalidTokenError(TokenFault.MALFORMED) from None
        return claims_to_token(
            payload,
            issuer=self.issuer,
            audience=self.audience,
            now=self.clock(),
            leeway=self.leeway,
            need_iat=True,
        )

    def _parse(self, token: str) -> tuple[bytes, bytes, Mapping[str, Any]]:
        """The signing input, the signature and the header of a JWS compact token,
        checked before any key is looked at."""
        if not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN_LENGTH:
            raise InvalidTokenError(TokenFault.MALFORMED)
        try:
            raw = token.encode("ascii")
            head, payload, signature = raw.split(b".")
            if not payload:
                raise ValueError("detached content")
            header = strict_json_object(urlsafe_b64decode(head))
            signature_bytes = urlsafe_b64decode(signature)
        except (ValueError, UnicodeError):  # binascii.Error is a ValueError
            raise InvalidTokenError(TokenFault.MALFORMED) from None
        alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ")
        # A kid present must be a string (RFC 7515 4.1.4): ``"kid": null`` is no "no kid".
        if not _REFUSED_HEADERS.isdisjoint(header) or (
            "kid" in header and (not isinstance(kid, str) or len(kid) > _MAX_KID_LENGTH)
        ):
            raise InvalidTokenError(TokenFault.MALFORMED)
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidTokenError(TokenFault.ALGORITHM)
        if not isinstance(typ, str) or typ.lower() not in _TYPES:
            raise InvalidTokenError(TokenFault.TYPE)
        return raw[: len(head) + 1 + len(payload)], signature_bytes, header


def _audiences(value: object) -> tuple[str, ...] | None:
    """``aud``: one string, or a non-empty list of strings (RFC 7519 section 4.1.3)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _text(value: object) -> TypeGuard[str]:
    """A string that is text: JSON's ``\\ud800`` escapes can make lone surrogates,
    which fail later, wherever the value is encoded (a log line, a database)."""
    if not isinstance(value, str):
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _optional_string(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name, "")
    if not _text(value):
        raise InvalidTokenError(TokenFault.MALFORMED)
    return value


def _auth_time(
    payload: Mapping[str, Any], iat: float | None, *, now: float, leeway: float
) -> float | None:
    """``auth_time`` when present: a NumericDate neither in the future nor after ``iat``
    (beyond ``leeway``). A token issued before the authentication it reports is one no
    honest authorization server makes (the issuer stamps both on its own clock), so its
    ``auth_time`` proves nothing: refused, not trusted."""
    if "auth_time" not in payload:
        return None
    auth_time = _number(payload["auth_time"])
    if auth_time is None:
        raise InvalidTokenError(TokenFault.MALFORMED)
    if auth_time > now + leeway:  # an authentication in the future
        raise InvalidTokenError(TokenFault.ISSUED_AT)
    if iat is not None and auth_time > iat + leeway:  # authenticated after issuance
        raise InvalidTokenError(TokenFault.ISSUED_AT)
    return auth_time


def claims_to_token(
    payload: Mapping[str, Any],
    *,
    issuer: str,
    audience: str,
    now: float,
    leeway: float,
    need_iat: bool,
) -> AccessToken:
    """Check the claims of a JWT access token or an introspection answer (RFC 9068
    section 4, RFC 7662 section 2.2) and read what a decision needs. Shared by both.

    Exact ``iss``; ``aud`` containing ``audience``; NumericDates that are numbers
    (not strings, booleans, ``NaN`` or past the year 9999); ``acr`` a string and ``amr``
    a list of strings; ``auth_time`` neither in the future nor after ``iat``; a token
    bound to a key or certificate (``cnf``: DPoP, mTLS) is refused, as its binding cannot
    be proved with a bearer header.

    ``scope`` must be RFC 6749 syntax, scope-tokens separated by single spaces
    (:func:`~stepup.tokens.scope_tokens`), else the token is malformed: refused whole,
    not read leniently. Splitting on any whitespace would read ``"read\\u00a0write"``
    (one scope) as granting ``write``; dropping the odd tokens would keep a token whose
    grant the issuer and this API read differently. RFC 9068, RFC 8693 and RFC 7662 all
    define the claim as that space-separated list, so an issuer that follows them is
    never refused; the empty string grants nothing."""
    iss, sub = payload.get("iss"), payload.get("sub")
    if not isinstance(iss, str) or iss != issuer:
        raise InvalidTokenError(TokenFault.ISSUER)
    if not sub or not _text(sub):
        raise InvalidTokenError(TokenFault.MALFORMED)
    audiences = _audiences(payload.get("aud"))
    if audiences is None or audience not in audiences:
        raise InvalidTokenError(TokenFault.AUDIENCE)
    exp = _number(payload.get("exp"))
    if exp is None:
        raise InvalidTokenError(TokenFault.MALFORMED)
    if now >= exp + leeway:
        raise InvalidTokenError(TokenFault.EXPIRED)
    iat = _number(payload.get("iat")) if "iat" in payload else None
    if ("iat" in payload and iat is None) or (need_iat and iat is None):
        raise InvalidTokenError(TokenFault.MALFORMED)
    if iat is not None and iat > now + leeway:
        raise InvalidTokenError(TokenFault.ISSUED_AT)
    if "nbf" in payload:
        nbf = _number(payload["nbf"])
        if nbf is None or nbf > now + leeway:
            raise InvalidTokenError(TokenFault.NOT_BEFORE)
    auth_time = _auth_time(payload, iat, now=now, leeway=leeway)
    if "cnf" in payload:
        raise InvalidTokenError(TokenFault.SENDER_CONSTRAINED)
    acr = payload.get("acr")
    if acr is not None and not _text(acr):
        raise InvalidTokenError(TokenFault.MALFORMED)
    amr = payload.get("amr", [])
    if not isinstance(amr, list) or not all(_text(m) for m in amr):
        raise InvalidTokenError(TokenFault.MALFORMED)
    scope = scope_tokens(_optional_string(payload, "scope"))
    if scope is None:
        raise InvalidTokenError(TokenFault.MALFORMED)
    return AccessToken(
        issuer=iss,
        subject=sub,
        audience=audiences,
        expires_at=exp,
        issued_at=iat,
        auth_time=auth_time,
        acr=acr,
        amr=tuple(amr),
        client_id=_optional_string(payload, "client_id"),
        scope=scope,
        token_id=_optional_string(payload, "jti"),
    )
