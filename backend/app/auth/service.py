"""Auth use cases. Each write ends with exactly one commit; nothing here knows HTTP."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.exceptions import EmailTaken, InvalidCredentials, InvalidToken, SessionNotFound
from app.auth.models import RefreshToken, User, UserSession
from app.auth.revocations import SessionCache
from app.auth.schemas import SignupRequest
from app.core.config import Settings
from app.core.ratelimit import RateLimiter
from app.core.schemas import as_utc, utcnow
from app.core.security import (
    AccessClaims,
    PasswordHasher,
    TokenService,
    hash_refresh_token,
    new_refresh_token,
)

# last_used_at is written at most this often per session, not on every request.
TOUCH_INTERVAL = timedelta(minutes=5)


@dataclass(slots=True)
class AuthContext:
    """What the auth use cases need besides a database session."""

    settings: Settings
    hasher: PasswordHasher
    tokens: TokenService
    limiter: RateLimiter
    sessions: SessionCache


@dataclass(slots=True)
class IssuedTokens:
    user: User
    access_token: str
    refresh_token: str
    expires_in: int


async def _start_session(
    db: AsyncSession, auth: AuthContext, user: User, user_agent: str | None
) -> IssuedTokens:
    """Add a session and its first refresh token (flushed, not committed)."""
    now = utcnow()
    user_session = UserSession(
        user_id=user.id,
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(days=auth.settings.REFRESH_TOKEN_EXPIRE_DAYS),
        user_agent=user_agent,
    )
    db.add(user_session)
    await db.flush()
    return await _issue(db, auth, user, user_session)


async def _issue(
    db: AsyncSession, auth: AuthContext, user: User, user_session: UserSession
) -> IssuedTokens:
    raw, token_hash = new_refresh_token()
    db.add(RefreshToken(token_hash=token_hash, session_id=user_session.id))
    await db.flush()
    return IssuedTokens(
        user=user,
        access_token=auth.tokens.create_access_token(user.id, user_session.id),
        refresh_token=raw,
        expires_in=int(auth.tokens.access_ttl.total_seconds()),
    )


async def signup(
    db: AsyncSession, auth: AuthContext, data: SignupRequest, user_agent: str | None
) -> IssuedTokens:
    hashed = await auth.hasher.hash(data.password)
    user = User(email=str(data.email), name=data.name, hashed_password=hashed)
    db.add(user)
    try:
        # The unique constraint decides under concurrent signups: the loser gets 409.
        await db.flush()
    except IntegrityError:
        await db.rollback()
        raise EmailTaken() from None
    issued = await _start_session(db, auth, user, user_agent)
    await db.commit()
    return issued


async def _get_user_by_email(db: AsyncSession, email: str) -> User | None:
    result = await db.execute(select(User).where(col(User.email) == email))
    return result.scalars().first()


async def login(
    db: AsyncSession, auth: AuthContext, email: str, password: str, user_agent: str | None
) -> IssuedTokens:
    failed_limit = auth.settings.FAILED_LOGIN_LIMIT
    await auth.limiter.check(failed_limit, "failed-login", email)
    user = await _get_user_by_email(db, email)
    await db.commit()  # end the read: no connection is held while bcrypt runs
    # Unknown emails verify against a dummy hash: same work, same answer, same timing.
    ok, new_hash = await auth.hasher.verify(password, user.hashed_password if user else None)
    if user is None or not ok:
        await auth.limiter.hit(failed_limit, "failed-login", email)
        raise InvalidCredentials()
    if new_hash:  # a plain $2b$ hash (or an old cost) is upgraded on login
        user.hashed_password = new_hash
        db.add(user)
    issued = await _start_session(db, auth, user, user_agent)
    await db.commit()
    return issued


async def _find_refresh_token(
    db: AsyncSession, token_hash: str
) -> tuple[RefreshToken, UserSession, User] | None:
    row = (
        await db.execute(
            select(RefreshToken, UserSession, User)
            .join(UserSession, col(UserSession.id) == col(RefreshToken.session_id))
            .join(User, col(User.id) == col(UserSession.user_id))
            .where(col(RefreshToken.token_hash) == token_hash)
        )
    ).first()
    return None if row is None else (row.RefreshToken, row.UserSession, row.User)


async def refresh(
    db: AsyncSession, auth: AuthContext, raw_token: str, user_agent: str | None
) -> IssuedTokens:
    token_hash = hash_refresh_token(raw_token)
    now = utcnow()
    found = await _find_refresh_token(db, token_hash)
    if found is None:
        raise InvalidToken()
    _, user_session, user = found
    if as_utc(user_session.expires_at) <= now:
        raise InvalidToken()
    # Spend the token atomically: of two concurrent uses only one can win. Only the
    # UPDATE's result says whether it was still unspent (the ORM copies the new
    # spent_at into the loaded row, so that row cannot tell any more).
    spent = await db.execute(
        update(RefreshToken)
        .where(col(RefreshToken.token_hash) == token_hash, col(RefreshToken.spent_at).is_(None))
        .values(spent_at=now)
        .returning(col(RefreshToken.token_hash))
    )
    if spent.first() is None:
        # A spent token presented again: it was copied. End the whole session
        # (OAuth 2.0 Security BCP, RFC 9700 §4.14.2: refresh token reuse detection).
        await db.execute(delete(UserSession).where(col(UserSession.id) == user_session.id))
        await db.commit()
        auth.sessions.forget(user_session.id)
        raise InvalidToken()
    user_session.last_used_at = now
    user_session.expires_at = now + timedelta(days=auth.settings.REFRESH_TOKEN_EXPIRE_DAYS)
    if user_agent:
        user_session.user_agent = user_agent
    db.add(user_session)
    issued = await _issue(db, auth, user, user_session)
    await db.commit()
    return issued


async def authenticate(db: AsyncSession, claims: AccessClaims) -> User:
    """The per-request check: one statement loads the user through a live session."""
    row = await _live_session(db, claims, User)
    user: User = row.User
    return user


async def check_session(db: AsyncSession, claims: AccessClaims) -> datetime:
    """The same check without loading the user; returns when the session expires."""
    row = await _live_session(db, claims, col(UserSession.expires_at))
    return as_utc(row.expires_at)


async def _live_session(db: AsyncSession, claims: AccessClaims, *columns: Any) -> Any:
    now = utcnow()
    row = (
        await db.execute(
            select(*columns, col(UserSession.last_used_at))
            .select_from(UserSession)
            .join(User, col(UserSession.user_id) == col(User.id))
            .where(
                col(UserSession.id) == claims.session_id,
                col(User.id) == claims.user_id,
                col(UserSession.expires_at) > now,
            )
        )
    ).first()
    if row is None:
        raise InvalidToken()
    if now - as_utc(row.last_used_at) > TOUCH_INTERVAL:
        await db.execute(
            update(UserSession)
            .where(col(UserSession.id) == claims.session_id)
            .values(last_used_at=now)
        )
        await db.commit()
    return row


async def logout(db: AsyncSession, auth: AuthContext, claims: AccessClaims) -> None:
    await db.execute(delete(UserSession).where(col(UserSession.id) == claims.session_id))
    await db.commit()
    auth.sessions.forget(claims.session_id)


async def logout_all(db: AsyncSession, auth: AuthContext, user: User) -> None:
    await db.execute(delete(UserSession).where(col(UserSession.user_id) == user.id))
    await db.commit()
    auth.sessions.forget_user(user.id)


async def update_name(db: AsyncSession, user: User, name: str | None) -> User:
    user.name = name
    user.updated_at = utcnow()
    db.add(user)
    await db.commit()
    return user


async def _check_password(db: AsyncSession, auth: AuthContext, user: User, password: str) -> None:
    """Verify the caller's password (brute force limited per account, like login)."""
    await auth.limiter.check(auth.settings.FAILED_LOGIN_LIMIT, "failed-login", user.email)
    await db.commit()  # release the connection while bcrypt runs
    ok, _ = await auth.hasher.verify(password, user.hashed_password)
    if not ok:
        await auth.limiter.hit(auth.settings.FAILED_LOGIN_LIMIT, "failed-login", user.email)
        raise InvalidCredentials("The current password is not correct")


async def change_password(
    db: AsyncSession, auth: AuthContext, user: User, claims: AccessClaims, current: str, new: str
) -> None:
    await _check_password(db, auth, user, current)
    user.hashed_password = await auth.hasher.hash(new)
    user.updated_at = utcnow()
    db.add(user)
    await db.execute(
        delete(UserSession).where(
            col(UserSession.user_id) == user.id,
            col(UserSession.id) != claims.session_id,
        )
    )
    await db.commit()
    auth.sessions.forget_user(user.id)


async def delete_account(db: AsyncSession, auth: AuthContext, user: User, password: str) -> None:
    await _check_password(db, auth, user, password)
    # Foreign keys cascade: sessions, tokens and every row the user owns go with it.
    await db.execute(delete(User).where(col(User.id) == user.id))
    await db.commit()
    auth.sessions.forget_user(user.id)


async def list_sessions(db: AsyncSession, user: User) -> list[UserSession]:
    result = await db.execute(
        select(UserSession)
        .where(col(UserSession.user_id) == user.id, col(UserSession.expires_at) > utcnow())
        .order_by(col(UserSession.created_at).desc(), col(UserSession.id))
    )
    return list(result.scalars().all())


async def revoke_session(
    db: AsyncSession, auth: AuthContext, user: User, session_id: uuid.UUID
) -> None:
    result = await db.execute(
        delete(UserSession)
        .where(
            col(UserSession.id) == session_id,
            col(UserSession.user_id) == user.id,
        )
        .returning(col(UserSession.id))
    )
    # Another user's session is "not found" too, so session ids cannot be probed.
    if result.first() is None:
        raise SessionNotFound()
    await db.commit()
    auth.sessions.forget(session_id)
