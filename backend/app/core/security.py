"""Password hashing and refresh tokens: the only module that touches passlib (JWTs:
tokens.py)."""

import asyncio
import hashlib
import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from passlib.context import CryptContext

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


def new_refresh_token() -> tuple[str, str]:
    """An opaque random token and the hash that is stored instead of it."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    # The token has 256 bits of entropy, so a fast hash is enough (no salt/stretching).
    return hashlib.sha256(token.encode()).hexdigest()
