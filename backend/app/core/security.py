"""Password hashing and JWTs: the only module that touches passlib and python-jose."""

import asyncio
import hashlib
import os
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jose import jwt
from passlib.context import CryptContext

from app.core.config import Settings

ALGORITHM = "HS256"
ACCESS_TYPE = "access"
MAX_PASSWORD_BYTES = 1024  # far above the 128-character policy; libpass refuses > 4096


def _lower_priority() -> None:
    """Hashing threads run at a lower CPU priority than the event loop, so a login
    storm slows logins rather than every other request (Linux: per-thread nice)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (OSError, AttributeError):  # pragma: no cover - not Linux, or not permitted
        pass


class PasswordHasher:
    """bcrypt through libpass's `bcrypt_sha256`: every byte of the password counts
    (plain bcrypt silently ignores everything past 72 bytes). Plain `$2b$` hashes still
    verify and are flagged for an upgrade. Hashing runs in a small thread pool, never
    on the event loop (bcrypt releases the GIL; cost 12 takes ~0.3 s here)."""

    def __init__(self, rounds: int, threads: int) -> None:
        self._context = CryptContext(
            schemes=["bcrypt_sha256", "bcrypt"],
            deprecated=["bcrypt"],
            bcrypt_sha256__rounds=rounds,
            bcrypt__rounds=rounds,
        )
        self._executor = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="bcrypt", initializer=_lower_priority
        )
        # Verified against when the email is unknown, so both paths cost the same
        # (OWASP authentication cheat sheet: avoid user enumeration by timing).
        self._dummy_hash = self._context.hash(secrets.token_urlsafe(16))

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def hash(self, password: str) -> str:
        result: str = await self._run(self._context.hash, password)
        return result

    async def verify(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        """(matches, new hash when the stored one should be upgraded)."""
        if len(password.encode()) > MAX_PASSWORD_BYTES:
            password = ""  # still pay for a verification, then fail
            hashed = None
        target = hashed or self._dummy_hash
        ok, new_hash = await self._run(self._context.verify_and_update, password, target)
        if hashed is None:
            return False, None
        return bool(ok), new_hash

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID


class TokenError(Exception):
    pass


_REQUIRED = ("sub", "sid", "iat", "exp", "iss", "aud", "typ")
# Verified tokens remembered per worker (each entry ~0.5 KB): see decode_access_token.
VERIFIED_CACHE_SIZE = 4096


class TokenService:
    """HS256 access tokens keyed with the UTF-8 bytes of SECRET_KEY.

    python-jose accepts any HMAC algorithm when none is pinned, does not require
    `exp`, and raises TypeError/JWKError/OverflowError on some hostile tokens, so
    decoding pins the algorithm, requires every claim, checks their types itself, and
    turns any failure into TokenError (RFC 8725, JWT best current practices)."""

    def __init__(self, settings: Settings) -> None:
        self._key = settings.secret_key_bytes
        self._issuer = settings.JWT_ISSUER
        self._audience = settings.JWT_AUDIENCE
        self.access_ttl = timedelta(minutes=settings.ACCESS_TOKEN_EXPIRE_MINUTES)
        # token -> (claims, exp): a token's signature and claims are checked once; a
        # repeat only re-checks expiry (~0.5 ms of python-jose saved per request).
        self._verified: dict[str, tuple[AccessClaims, float]] = {}

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

    def decode_access_token(self, token: str) -> AccessClaims:
        """The claims of a valid access token, else TokenError.

        Only tokens that passed every check are remembered, keyed by their exact text
        (the HMAC covers every byte of it), and a remembered one is still refused from
        its `exp` on, as python-jose would. Whether its session is still live is the
        caller's check, on every request."""
        cached = self._verified.get(token)
        if cached is not None:
            if time.time() < cached[1]:
                return cached[0]
            del self._verified[token]
        try:
            claims, expires = self._decode(token)
        except TokenError:
            raise
        except Exception as exc:  # any library failure on hostile input is a bad token
            raise TokenError(type(exc).__name__) from exc
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            del self._verified[next(iter(self._verified))]  # the oldest entry
        self._verified[token] = (claims, expires)
        return claims

    def _decode(self, token: str) -> tuple[AccessClaims, float]:
        if len(token) > 4096 or jwt.get_unverified_header(token).get("alg") != ALGORITHM:
            raise TokenError("algorithm")
        claims = jwt.decode(
            token,
            self._key,
            algorithms=[ALGORITHM],
            audience=self._audience,
            issuer=self._issuer,
            options={f"require_{claim}": True for claim in ("exp", "iat", "sub", "aud", "iss")},
        )
        if any(claims.get(name) is None for name in _REQUIRED):
            raise TokenError("missing claim")
        if not all(_is_numeric_date(claims[name]) for name in ("iat", "exp")):
            raise TokenError("numeric dates must be numbers")  # jose coerces strings
        if claims["typ"] != ACCESS_TYPE:
            raise TokenError("wrong token type")
        access = AccessClaims(_uuid_claim(claims["sub"]), _uuid_claim(claims["sid"]))
        return access, float(claims["exp"])


def _is_numeric_date(value: object) -> bool:
    # RFC 7519 NumericDate: a JSON number (fractions allowed); bool is an int subclass.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _uuid_claim(value: object) -> uuid.UUID:
    """A UUID in its canonical 36-character string form. `uuid.UUID(str(value))` would
    also take an integer of 32 digits, braces or a `urn:uuid:` prefix."""
    if not isinstance(value, str) or len(value) != 36:
        raise TokenError("not a UUID")
    return uuid.UUID(value)


def new_refresh_token() -> tuple[str, str]:
    """An opaque random token and the hash that is stored instead of it."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    # The token has 256 bits of entropy, so a fast hash is enough (no salt/stretching).
    return hashlib.sha256(token.encode()).hexdigest()
