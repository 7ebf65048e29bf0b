"""Auth use cases. Each write ends with exactly one commit; nothing here knows HTTP."""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.exceptions import EmailTaken, InvalidCredentials, InvalidToken, SessionNotFound
from app.auth.models import RefreshToken, User, UserSession
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
    result = await db.execute(select(User).where(User.email == email))  # type: ignore[arg-type]
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


async def refresh(
    db: AsyncSession, auth: AuthContext, raw_token: str, user_agent: str | None
) -> IssuedTokens:
    token_hash = hash_refresh_token(raw_token)
    now = utcnow()
    row = (
        await db.execute(
            select(RefreshToken, UserSession, User)
            .join(UserSession, UserSession.id == RefreshToken.session_id)  # type: ignore[arg-type]
            .join(User, User.id == UserSession.user_id)  # type: ignore[arg-type]
            .where(RefreshToken.token_hash == token_hash)  # type: ignore[arg-type]
        )
    ).first()
    if row is None or as_utc(row.UserSession.expires_at) <= now:
        raise InvalidToken()
    token, user_session, user = row.RefreshToken, row.UserSession, row.User
    # Spend the token atomically: of two concurrent uses only one can win.
    spent = await db.execute(
        update(RefreshToken)
        .where(RefreshToken.token_hash == token_hash, RefreshToken.spent_at.is_(None))  # type: ignore[arg-type,union-attr]
        .values(spent_at=now)
    )
    if token.spent_at is not None or spent.rowcount != 1:  # type: ignore[attr-defined]
        # A spent token presented again: it was copied. End the whole session
        # (OAuth 2.0 Security BCP, RFC 9700 §4.14.2: refresh token reuse detection).
        await db.execute(delete(UserSession).where(UserSession.id == user_session.id))  # type: ignore[arg-type]
        await db.commit()
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
    now = utcnow()
    row = (
        await db.execute(
            select(User, UserSession.last_used_at)
            .join(UserSession, UserSession.user_id == User.id)  # type: ignore[arg-type]
            .where(
                UserSession.id == claims.session_id,  # type: ignore[arg-type]
                User.id == claims.user_id,  # type: ignore[arg-type]
                UserSession.expires_at > now,  # type: ignore[arg-type]
            )
        )
    ).first()
    if row is None:
        raise InvalidToken()
    user: User = row.User
    if now - as_utc(row.last_used_at) > TOUCH_INTERVAL:
        await db.execute(
            update(UserSession)
            .where(UserSession.id == claims.session_id)  # type: ignore[arg-type]
            .values(last_used_at=now)
        )
        await db.commit()
    return user


async def logout(db: AsyncSession, claims: AccessClaims) -> None:
    await db.execute(delete(UserSession).where(UserSession.id == claims.session_id))  # type: ignore[arg-type]
    await db.commit()


async def logout_all(db: AsyncSession, user: User) -> None:
    await db.execute(delete(UserSession).where(UserSession.user_id == user.id))  # type: ignore[arg-type]
    await db.commit()


async def update_name(db: AsyncSession, user: User, name: str | None) -> User:
    user.name = name
    user.updated_at = utcnow()
    db.add(user)
    await db.commit()
    return user


async def _check_password(
    db: AsyncSession, auth: AuthContext, user: User, password: str
) -> None:
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
            UserSession.user_id == user.id,  # type: ignore[arg-type]
            UserSession.id != claims.session_id,  # type: ignore[arg-type]
        )
    )
    await db.commit()


async def delete_account(db: AsyncSession, auth: AuthContext, user: User, password: str) -> None:
    await _check_password(db, auth, user, password)
    # Foreign keys cascade: sessions, tokens and every row the user owns go with it.
    await db.execute(delete(User).where(User.id == user.id))  # type: ignore[arg-type]
    await db.commit()


async def list_sessions(db: AsyncSession, user: User) -> list[UserSession]:
    result = await db.execute(
        select(UserSession)
        .where(UserSession.user_id == user.id, UserSession.expires_at > utcnow())  # type: ignore[arg-type]
        .order_by(UserSession.created_at.desc(), UserSession.id)  # type: ignore[attr-defined]
    )
    return list(result.scalars().all())


async def revoke_session(db: AsyncSession, user: User, session_id: uuid.UUID) -> None:
    result = await db.execute(
        delete(UserSession).where(
            UserSession.id == session_id,  # type: ignore[arg-type]
            UserSession.user_id == user.id,  # type: ignore[arg-type]
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise SessionNotFound()
    await db.commit()
