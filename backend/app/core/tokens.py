"""Access tokens, ours and an external identity provider's: the only module that touches
the JWT library (PyJWT, with `cryptography` for the asymmetric algorithms).

Ours are HS256, keyed with the UTF-8 bytes of SECRET_KEY, and carry `sub` (user id),
`sid` (session id), `iat`, `exp`, `iss`, `aud` and `typ`. External ones (Better Auth's
JWT plugin, or anything like it) are signed by a key published at EXTERNAL_JWKS_URL
(EdDSA/Ed25519, ES256, RS256, PS256) or with EXTERNAL_JWT_SECRET (HS256).

Which key verifies a token, and with which algorithm, is decided here, never by the
token: a JWKS key verifies only its own algorithm (the JWK's `alg`, else the one its key
type implies), the shared secret only HS256, ours only HS256 with our key. The header's
`alg` must be that algorithm (RFC 8725 §3.1: no `none`, no HMAC keyed with a public
key's bytes, no algorithm swap). An HS256 token is tried against our key first: if our
key signed it, it is one of ours and must pass our checks; it is never taken as an
external one. Every library failure on hostile input becomes TokenError (401).

Each verified token is remembered per worker, keyed by its exact text (the signature
covers every byte of it), until its `exp` (plus the leeway, for external ones): a
repeat costs a dictionary lookup. An external one is also forgotten as soon as its key
leaves the JWKS.
"""

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import jwt
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from app.core.config import Settings
from app.core.errors import AppError, ServiceUnavailable
from app.core.sanitize import forbidden_character, sanitize_text

logger = logging.getLogger("app.auth.tokens")

ALGORITHM = "HS256"
ACCESS_TYPE = "access"
MAX_TOKEN_CHARS = 8192  # an external token carries the provider's user object
MAX_OWN_TOKEN_CHARS = 4096  # ours are ~300 characters
VERIFIED_CACHE_SIZE = 4096  # per worker and per kind (each entry ~0.5 KB)

# External tokens: clock leeway (the contract allows at most 60 s), the `sub` length.
EXTERNAL_LEEWAY = 30
MAX_SUBJECT_CHARS = 255
# The JWKS: one refetch for an unknown `kid` at most this often; every fetch is bounded
# in time (the whole of it, redirects and body included) and in size.
JWKS_REFETCH_INTERVAL = 10.0
JWKS_CONNECT_TIMEOUT = 2.0
JWKS_TOTAL_TIMEOUT = 4.0
JWKS_MAX_BYTES = 128 * 1024
JWKS_MAX_REDIRECTS = 3
JWKS_RETRY_AFTER = "5"

# The algorithm a JWK's key type implies when it names none (RSA: RS256; PS256 must be
# named), and the algorithms a JWK may name for its key type.
_IMPLIED = {("OKP", "Ed25519"): "EdDSA", ("EC", "P-256"): "ES256", ("RSA", None): "RS256"}
_ALLOWED = {
    ("OKP", "Ed25519"): {"EdDSA", "Ed25519"},
    ("EC", "P-256"): {"ES256"},
    ("RSA", None): {"RS256", "PS256"},
}
MIN_RSA_BITS = 2048


@dataclass(frozen=True, slots=True)
class ExternalIdentity:
    """A verified external token: its `sub`, and the profile claims worth keeping."""

    subject: str
    email: str | None
    name: str | None


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """Who a request acts for: the user and the session its token belongs to. For an
    external account, `identity` is what its identity provider's token said (and its
    session is the one row that lives as long as the account, see auth/service.py)."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    identity: ExternalIdentity | None = None

    @property
    def external(self) -> bool:
        return self.identity is not None


class TokenError(Exception):
    pass


class IdentityProviderUnavailable(ServiceUnavailable):
    code = "identity_provider_unavailable"
    detail = "The identity provider's keys cannot be fetched, retry later"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": JWKS_RETRY_AFTER})


class _Remembered:
    """Verified tokens, bounded: the oldest entry goes first."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Any, float, str | None]] = {}

    def get(self, token: str) -> tuple[Any, str | None] | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if time.time() >= entry[1]:
            del self._entries[token]
            return None
        return entry[0], entry[2]

    def put(self, token: str, value: Any, deadline: float, kid: str | None = None) -> None:
        if len(self._entries) >= VERIFIED_CACHE_SIZE:
            del self._entries[next(iter(self._entries))]
        self._entries[token] = (value, deadline, kid)

    def forget(self, token: str) -> None:
        self._entries.pop(token, None)


class TokenService:
    """Issues our access tokens and verifies every access token, ours and external."""

    def __init__(self, settings: Settings) -> None:
        self._key = settings.secret_key_bytes
        self._issuer = settings.JWT_ISSUER
        self._audience = settings.JWT_AUDIENCE
        self._local = settings.LOCAL_AUTH_ENABLED
        self.access_ttl = timedelta(minutes=settings.ACCESS_TOKEN_EXPIRE_MINUTES)
        secret = settings.EXTERNAL_JWT_SECRET
        self._external_secret = secret.get_secret_value().encode() if secret else None
        self._external_issuer = settings.EXTERNAL_JWT_ISSUER or None
        self._external_audience = settings.EXTERNAL_JWT_AUDIENCE or None
        self.jwks = (
            JwksKeys(settings.EXTERNAL_JWKS_URL, settings.EXTERNAL_JWKS_CACHE_SECONDS)
            if settings.EXTERNAL_JWKS_URL
            else None
        )
        self._ours = _Remembered()
        self._theirs = _Remembered()

    @property
    def external_enabled(self) -> bool:
        return self.jwks is not None or self._external_secret is not None

    def create_access_token(self, user_id: uuid.UUID, session_id: uuid.UUID) -> str:
        now = datetime.now(UTC)
        claims = {
            "sub": str(user_id),
            "sid": str(session_id),
            "iat": int(now.timestamp()),
            "exp": int((now + self.access_ttl).timestamp()),
            "iss": self._issuer,
            "aud": self._audience,
            "typ": ACCESS_TYPE,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    async def verify(self, token: str) -> AccessClaims | ExternalIdentity:
        """Ours (AccessClaims) or an external identity provider's (ExternalIdentity);
        TokenError when it is neither, IdentityProviderUnavailable when the JWKS
        cannot be had for it."""
        remembered = self._ours.get(token)
        if remembered is not None:
            ours: AccessClaims = remembered[0]
            return ours
        remembered = self._theirs.get(token)
        if remembered is not None:
            identity, kid = remembered
            if kid is None or (self.jwks is not None and self.jwks.has(kid)):
                external: ExternalIdentity = identity
                return external
            self._theirs.forget(token)  # its key has left the JWKS
        try:
            return await self._verify(token)
        except (TokenError, AppError):
            raise
        except Exception as exc:  # any library failure on hostile input is a bad token
            raise TokenError(type(exc).__name__) from exc

    async def _verify(self, token: str) -> AccessClaims | ExternalIdentity:
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenError("too long")
        header = jwt.get_unverified_header(token)
        alg = header.get("alg")
        if alg == ALGORITHM:
            if self._local and len(token) <= MAX_OWN_TOKEN_CHARS:
                try:
                    claims, expires = self._decode_ours(token)
                except jwt.InvalidSignatureError:
                    pass  # not signed with our key (PyJWT checks the signature first)
                else:
                    self._ours.put(token, claims, expires)
                    return claims
            if self._external_secret is not None:
                return self._decode_external(token, self._external_secret, ALGORITHM, None)
            raise TokenError("signature")
        if self.jwks is None or not isinstance(alg, str):
            raise TokenError("algorithm")
        kid = header.get("kid")
        if kid is not None and (not isinstance(kid, str) or len(kid) > 255):
            raise TokenError("kid")
        key = await self.jwks.key(kid)
        if key.algorithm != alg:
            raise TokenError("algorithm unlike the key's")
        return self._decode_external(token, key.key, key.algorithm, kid)

    def _decode_ours(self, token: str) -> tuple[AccessClaims, float]:
        claims = jwt.decode(
            token,
            self._key,
            algorithms=[ALGORITHM],
            audience=self._audience,
            issuer=self._issuer,
            options={"require": ["exp", "iat", "sub", "aud", "iss"], "verify_sub": False},
        )
        if any(claims.get(name) is None for name in ("sub", "sid", "typ")):
            raise TokenError("missing claim")
        if not all(_is_numeric_date(claims[name]) for name in ("iat", "exp")):
            raise TokenError("numeric dates must be numbers")  # PyJWT takes "123" too
        if claims["typ"] != ACCESS_TYPE:
            raise TokenError("wrong token type")
        access = AccessClaims(_uuid_claim(claims["sub"]), _uuid_claim(claims["sid"]))
        return access, float(claims["exp"])

    def _decode_external(
        self, token: str, key: Any, algorithm: str, kid: str | None
    ) -> ExternalIdentity:
        options: dict[str, Any] = {
            "require": ["exp", "sub"],
            "verify_aud": self._external_audience is not None,
            "verify_iss": self._external_issuer is not None,
            "verify_sub": False,  # checked below, more strictly
        }
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=self._external_audience,
            issuer=self._external_issuer,
            leeway=EXTERNAL_LEEWAY,
            options=options,  # type: ignore[arg-type]
        )
        if not all(_is_numeric_date(claims[n]) for n in ("exp", "nbf", "iat") if n in claims):
            raise TokenError("numeric dates must be numbers")
        if claims.get("iss") == self._issuer or claims.get("typ") == ACCESS_TYPE:
            raise TokenError("our own claims in an external token")
        subject = claims["sub"]
        if (
            not isinstance(subject, str)
            or not 1 <= len(subject) <= MAX_SUBJECT_CHARS
            or forbidden_character(subject)
            or not subject.isprintable()
        ):
            raise TokenError("sub")
        identity = ExternalIdentity(subject, _email_claim(claims), _name_claim(claims))
        self._theirs.put(token, identity, float(claims["exp"]) + EXTERNAL_LEEWAY, kid)
        return identity

    async def close(self) -> None:
        if self.jwks is not None:
            await self.jwks.close()


def _is_numeric_date(value: object) -> bool:
    # RFC 7519 NumericDate: a JSON number (fractions allowed); bool is an int subclass.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _uuid_claim(value: object) -> uuid.UUID:
    """A UUID in its canonical 36-character string form. `uuid.UUID(str(value))` would
    also take an integer of 32 digits, braces or a `urn:uuid:` prefix."""
    if not isinstance(value, str) or len(value) != 36:
        raise TokenError("not a UUID")
    return uuid.UUID(value)


def _email_claim(claims: dict[str, Any]) -> str | None:
    """The provider's email, trimmed and lower-cased; anything unlike one is ignored
    (the profile is filled from it, nothing is looked up by it)."""
    value = claims.get("email")
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    if not 3 <= len(value) <= 320 or "@" not in value or forbidden_character(value):
        return None
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        return None
    return value


def _name_claim(claims: dict[str, Any]) -> str | None:
    """The provider's name, sanitized and trimmed like a name we are sent; unusable: None."""
    value = claims.get("name")
    if not isinstance(value, str) or len(value) > 1000 or forbidden_character(value):
        return None
    try:
        value = sanitize_text(value).strip()
    except ValueError:
        return None
    return value[:100] or None


@dataclass(frozen=True, slots=True)
class VerificationKey:
    key: Any
    algorithm: str


def parse_jwks(document: Any) -> dict[str | None, VerificationKey]:
    """The usable signing keys of a JWKS by `kid`; keys of other kinds, uses or curves,
    weak RSA keys and malformed entries are skipped (one bad key spoils nothing)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS")
    keys: dict[str | None, VerificationKey] = {}
    for jwk in document["keys"]:
        try:
            parsed = _parse_jwk(jwk)
        except Exception:
            continue
        if parsed is not None:
            kid = jwk.get("kid")
            keys[kid if isinstance(kid, str) else None] = parsed
    return keys


def _parse_jwk(jwk: Any) -> VerificationKey | None:
    if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig" or "d" in jwk:
        return None  # not a signing key, or a private key published by mistake
    kty = jwk.get("kty")
    kind = (kty, None) if kty == "RSA" else (kty, jwk.get("crv"))
    if kind not in _IMPLIED:
        return None
    named = jwk.get("alg")
    if named is not None and named not in _ALLOWED[kind]:
        return None
    algorithm = "EdDSA" if named == "Ed25519" else (named or _IMPLIED[kind])
    text = json.dumps(jwk)
    if kty == "OKP":
        key: Any = OKPAlgorithm.from_jwk(text)
    elif kty == "EC":
        key = ECAlgorithm.from_jwk(text)
    else:
        key = RSAAlgorithm.from_jwk(text)
        if key.key_size < MIN_RSA_BITS:
            return None
    return VerificationKey(key, algorithm)


class JwksKeys:
    """The identity provider's keys: fetched on first use, kept EXTERNAL_JWKS_CACHE_SECONDS,
    refetched at once (one fetch at a time, at most one every JWKS_REFETCH_INTERVAL) for
    an unknown `kid`. Kept keys keep working while the JWKS cannot be fetched."""

    def __init__(self, url: str, cache_seconds: int) -> None:
        self.url = url
        self._ttl = cache_seconds
        self._keys: dict[str | None, VerificationKey] = {}
        self._fetched_at: float | None = None  # monotonic, last successful fetch
        self._attempted_at: float | None = None  # monotonic, last fetch attempt
        self._last_failed = False
        self._fetching: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self.fetches = 0

    def has(self, kid: str) -> bool:
        return kid in self._keys

    async def key(self, kid: str | None) -> VerificationKey:
        now = time.monotonic()
        known = self._keys.get(kid)
        stale = self._fetched_at is None or now - self._fetched_at >= self._ttl
        if known is not None and not stale:
            return known
        if self._fetching is not None and not self._fetching.done():
            await asyncio.shield(self._fetching)  # one fetch at a time: share it
        elif self._may_fetch(now, known is None):
            await self._refresh()
        known = self._keys.get(kid)
        if known is not None:
            return known  # stale keys included, while the JWKS is down
        if self._last_failed:
            raise IdentityProviderUnavailable()
        raise TokenError("unknown kid")

    def _may_fetch(self, now: float, unknown_kid: bool) -> bool:
        """Keys past their time are refetched once (and after a failure, again at most
        every JWKS_REFETCH_INTERVAL); an unknown `kid` refetches at most that often."""
        if self._attempted_at is None:
            return True
        interval = JWKS_REFETCH_INTERVAL if unknown_kid else min(JWKS_REFETCH_INTERVAL, self._ttl)
        return now - self._attempted_at >= interval

    async def _refresh(self) -> None:
        """One fetch for everyone waiting: concurrent callers share it, and a caller
        that goes away (its client hung up) does not cancel it for the others."""
        self._attempted_at = time.monotonic()
        self._fetching = asyncio.get_running_loop().create_task(self._fetch())
        await asyncio.shield(self._fetching)

    async def _fetch(self) -> None:
        self.fetches += 1
        try:
            async with asyncio.timeout(JWKS_TOTAL_TIMEOUT):
                document = await self._download()
            keys = parse_jwks(document)
        except Exception as exc:
            self._last_failed = True
            logger.warning("JWKS fetch failed: %s", _describe(exc))
            return
        self._keys = keys
        self._fetched_at = time.monotonic()
        self._last_failed = False

    async def _download(self) -> Any:
        if self._client is None:
            timeout = httpx.Timeout(JWKS_TOTAL_TIMEOUT, connect=JWKS_CONNECT_TIMEOUT)
            self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        url = self.url
        origin = _origin(url)
        for _ in range(JWKS_MAX_REDIRECTS + 1):
            async with self._client.stream(
                "GET", url, headers={"Accept": "application/json"}
            ) as response:
                if response.is_redirect:
                    target = urljoin(url, response.headers.get("location", ""))
                    if _origin(target) != origin:
                        raise ValueError("redirect to another host")
                    url = target
                    continue
                response.raise_for_status()
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > JWKS_MAX_BYTES:
                        raise ValueError(f"JWKS larger than {JWKS_MAX_BYTES} bytes")
                return json.loads(bytes(body))
        raise ValueError("too many redirects")

    async def close(self) -> None:
        if self._fetching is not None and not self._fetching.done():
            self._fetching.cancel()
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"[:200]
