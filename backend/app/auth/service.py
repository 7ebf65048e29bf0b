"""Auth use cases on the worker's asyncpg pool; nothing here knows HTTP.

Each write is one statement (statements.py), run on its own: PostgreSQL makes it one
transaction, so each use case ends with exactly one commit, before the response is
built, in one round trip. Reads run on a pooled connection too. No connection is held
while bcrypt runs (~0.3 s at cost 12): the connection is returned before hashing and
taken again for the write.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from app.auth import statements as sql
from app.auth.exceptions import (
    EmailTaken,
    ExternalAccount,
    InvalidCredentials,
    InvalidToken,
    SessionNotFound,
)
from app.auth.models import User, UserSession
from app.auth.revocations import SessionCache
from app.auth.schemas import SignupRequest
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import ServiceUnavailable
from app.core.ratelimit import RateLimiter
from app.core.schemas import utcnow
from app.core.security import PasswordHasher, hash_refresh_token, new_refresh_token
from app.core.tokens import AccessClaims, ExternalIdentity, TokenService

# last_used_at is written at most this often per session, not on every request.
TOUCH_INTERVAL = timedelta(minutes=5)
# An external account's one session row ends with the account, not before.
EXTERNAL_SESSION_LIFETIME = timedelta(days=365 * 100)
EXTERNAL_ACCOUNTS_CACHED = 10_000
PROVISION_ATTEMPTS = 3


class ExternalAccounts:
    """External subjects' account ids, per worker and bounded: a known subject's request
    costs no database round trip to find its account (its session check is the same
    as everyone's, cached by SessionCache and evicted at once when the account goes)."""

    def __init__(self) -> None:
        self._ids: dict[str, uuid.UUID] = {}

    async def claims(self, db: Database, identity: ExternalIdentity) -> AccessClaims:
        user_id = self._ids.get(identity.subject)
        if user_id is None:
            user_id = await provision_external(db, identity)
            if len(self._ids) >= EXTERNAL_ACCOUNTS_CACHED:
                del self._ids[next(iter(self._ids))]
            self._ids[identity.subject] = user_id
        return AccessClaims(user_id, user_id, identity)

    def forget(self, subject: str) -> None:
        self._ids.pop(subject, None)


@dataclass(slots=True)
class AuthContext:
    """What the auth use cases need besides the database."""

    settings: Settings
    hasher: PasswordHasher
    tokens: TokenService
    limiter: RateLimiter
    sessions: SessionCache
    external: ExternalAccounts


@dataclass(slots=True)
class IssuedTokens:
    user: User
    access_token: str
    refresh_token: str
    expires_in: int


def _user(row: asyncpg.Record) -> User:
    return User(**{name: row[name] for name in sql.USER_FIELDS})


def _tokens(auth: AuthContext, user: User, session_id: uuid.UUID, raw: str) -> IssuedTokens:
    return IssuedTokens(
        user=user,
        access_token=auth.tokens.create_access_token(user.id, session_id),
        refresh_token=raw,
        expires_in=int(auth.tokens.access_ttl.total_seconds()),
    )


def _session_expiry(auth: AuthContext, now: datetime) -> datetime:
    return now + timedelta(days=auth.settings.REFRESH_TOKEN_EXPIRE_DAYS)


async def signup(
    db: Database, auth: AuthContext, data: SignupRequest, user_agent: str | None
) -> IssuedTokens:
    hashed = await auth.hasher.hash(data.password)
    now, session_id = utcnow(), uuid.uuid4()
    user = User(
        email=str(data.email),
        name=data.name,
        hashed_password=hashed,
        created_at=now,
        updated_at=now,
    )
    raw, token_hash = new_refresh_token()
    args = (user.id, user.email, user.name, hashed, now)
    session = (session_id, _session_expiry(auth, now), user_agent, token_hash)
    async with db.connection() as conn:
        try:
            await conn.execute(sql.SIGNUP, *args, *session)
        except asyncpg.UniqueViolationError:
            # The constraint decides under concurrent signups: the loser gets 409.
            raise EmailTaken() from None
    return _tokens(auth, user, session_id, raw)


async def login(
    db: Database, auth: AuthContext, email: str, password: str, user_agent: str | None
) -> IssuedTokens:
    failed_limit = auth.settings.FAILED_LOGIN_LIMIT
    await auth.limiter.check(failed_limit, "failed-login", email)
    async with db.connection() as conn:  # returned before bcrypt runs
        row = await conn.fetchrow(sql.GET_USER_BY_EMAIL, email)
    user = None if row is None else _user(row)
    # Unknown emails verify against a dummy hash: same work, same answer, same timing.
    ok, new_hash = await auth.hasher.verify(password, user.hashed_password if user else None)
    if user is None or not ok:
        await auth.limiter.hit(failed_limit, "failed-login", email)
        raise InvalidCredentials()
    now, session_id = utcnow(), uuid.uuid4()
    raw, token_hash = new_refresh_token()
    async with db.connection() as conn:
        started = await conn.fetchval(
            sql.LOGIN,
            user.id,
            user.hashed_password,
            new_hash,  # a plain $2b$ hash (or an old cost) is upgraded on login
            session_id,
            now,
            _session_expiry(auth, now),
            user_agent,
            token_hash,
        )
    if not started:  # the account was deleted while its password was being checked
        raise InvalidCredentials()
    return _tokens(auth, user, session_id, raw)


async def refresh(
    db: Database, auth: AuthContext, raw_token: str, user_agent: str | None
) -> IssuedTokens:
    now = utcnow()
    raw, successor_hash = new_refresh_token()
    args = (hash_refresh_token(raw_token), now, _session_expiry(auth, now), user_agent)
    async with db.connection() as conn:
        row = await conn.fetchrow(sql.REFRESH, *args, successor_hash)
        if row is None:  # unknown token, or its session ended or expired
            raise InvalidToken()
        session_id: uuid.UUID = row["session_id"]
        if not row["fresh"]:
            # A spent token presented again: it was copied. End the whole session
            # (OAuth 2.0 Security BCP, RFC 9700 §4.14.2: refresh token reuse detection).
            await conn.execute(sql.DELETE_SESSION, session_id)
    if not row["fresh"]:
        auth.sessions.forget(session_id)
        raise InvalidToken()
    return _tokens(auth, _user(row), session_id, raw)


async def provision_external(db: Database, identity: ExternalIdentity) -> uuid.UUID:
    """The account of an external subject, created by its first valid token. Never
    linked to one of our accounts by email: the subject alone decides."""
    for _ in range(PROVISION_ATTEMPTS):
        now = utcnow()
        args = (identity.subject, uuid.uuid4(), identity.email, identity.name, now)
        try:
            async with db.connection() as conn:
                user_id: uuid.UUID | None = await conn.fetchval(
                    sql.PROVISION_EXTERNAL, *args, now + EXTERNAL_SESSION_LIFETIME
                )
        except asyncpg.ForeignKeyViolationError:
            continue  # the account was deleted between the statement's read and write
        if user_id is not None:
            return user_id
    raise ServiceUnavailable(headers={"Retry-After": "1"})  # pragma: no cover - a race, thrice


def require_local(user: User) -> None:
    """Sessions, refresh tokens and passwords are our own accounts' business."""
    if user.external_subject is not None:
        raise ExternalAccount()


def _check_args(claims: AccessClaims) -> tuple[uuid.UUID, uuid.UUID, datetime, datetime]:
    now = utcnow()
    return claims.session_id, claims.user_id, now, now - TOUCH_INTERVAL


async def authenticate(db: Database, claims: AccessClaims) -> User:
    """The per-request check: one statement loads the user through a live session
    (and touches last_used_at when due)."""
    async with db.connection() as conn:
        row = await conn.fetchrow(sql.AUTHENTICATE, *_check_args(claims))
    if row is None:
        raise InvalidToken()
    return _user(row)


async def check_session(db: Database, claims: AccessClaims) -> datetime:
    """The same check without loading the user; returns when the session expires."""
    async with db.connection() as conn:
        expires_at: datetime | None = await conn.fetchval(sql.CHECK_SESSION, *_check_args(claims))
    if expires_at is None:
        raise InvalidToken()
    return expires_at


async def logout(db: Database, auth: AuthContext, claims: AccessClaims) -> None:
    async with db.connection() as conn:
        await conn.execute(sql.DELETE_SESSION, claims.session_id)
    auth.sessions.forget(claims.session_id)


async def logout_all(db: Database, auth: AuthContext, user: User) -> None:
    async with db.connection() as conn:
        await conn.execute(sql.DELETE_USER_SESSIONS, user.id)
    auth.sessions.forget_user(user.id)


async def update_name(db: Database, user: User, name: str | None) -> User:
    async with db.connection() as conn:
        row = await conn.fetchrow(sql.UPDATE_NAME, user.id, name, utcnow())
    if row is None:  # the account was deleted since the request was authenticated
        raise InvalidToken()
    return _user(row)


async def _check_password(auth: AuthContext, user: User, password: str) -> None:
    """Verify the caller's password (brute force limited per account, like login).
    No connection is held: the user was loaded by the request's dependency."""
    account = user.email or str(user.id)
    await auth.limiter.check(auth.settings.FAILED_LOGIN_LIMIT, "failed-login", account)
    ok, _ = await auth.hasher.verify(password, user.hashed_password)
    if not ok:
        await auth.limiter.hit(auth.settings.FAILED_LOGIN_LIMIT, "failed-login", account)
        raise InvalidCredentials("The current password is not correct")


async def change_password(
    db: Database, auth: AuthContext, user: User, claims: AccessClaims, current: str, new: str
) -> None:
    await _check_password(auth, user, current)
    hashed = await auth.hasher.hash(new)
    async with db.connection() as conn:
        changed = await conn.fetchval(
            sql.CHANGE_PASSWORD, user.id, user.hashed_password, hashed, utcnow(), claims.session_id
        )
    if changed is None:
        # The password changed (or the account went) while this one was checked: the
        # current password given is no longer the current one; nothing was written.
        raise InvalidCredentials("The current password is not correct")
    auth.sessions.forget_user(user.id)


async def delete_account(db: Database, auth: AuthContext, user: User, password: str | None) -> None:
    """Our accounts confirm with their password; an external one needs none (its
    provider signed the request's token)."""
    if user.external_subject is None:
        if password is None:
            # No body: the deletion is not confirmed (401, as for a wrong password).
            raise InvalidCredentials("Confirm the deletion with the account's password")
        await _check_password(auth, user, password)
    else:
        auth.external.forget(user.external_subject)
    async with db.connection() as conn:
        await conn.execute(sql.DELETE_USER, user.id)
    auth.sessions.forget_user(user.id)


async def list_sessions(db: Database, user: User) -> list[UserSession]:
    async with db.connection() as conn:
        rows = await conn.fetch(sql.LIST_SESSIONS, user.id, utcnow())
    return [UserSession(**dict(row)) for row in rows]


async def revoke_session(
    db: Database, auth: AuthContext, user: User, session_id: uuid.UUID
) -> None:
    async with db.connection() as conn:
        revoked = await conn.fetchval(sql.REVOKE_SESSION, session_id, user.id)
    if revoked is None:  # another user's session is "not found" too
        raise SessionNotFound()
    auth.sessions.forget(session_id)
