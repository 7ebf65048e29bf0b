"""The SQL of the auth use cases (service.py): text constants, values always bound.

Every write is one statement, which PostgreSQL runs as its own transaction: one round
trip and one commit, with nothing to roll back by hand (a failing statement, e.g. a
taken email, writes nothing). The one exception is a reused refresh token: REFRESH
then writes nothing, and DELETE_SESSION ends the session. Data-modifying CTEs chain the rows a use case writes
(user, session, refresh token); a row a CTE filters out stops the ones after it.
Parameters that only appear in a select list carry a cast: PostgreSQL cannot infer
their type from an INSERT's target there.
"""

# The user as `User(**row)` takes it, unqualified and from the alias `u`.
USER_FIELDS = (
    "id",
    "email",
    "name",
    "hashed_password",
    "external_subject",
    "created_at",
    "updated_at",
)
USER_COLUMNS = ", ".join(USER_FIELDS)
_U_COLUMNS = ", ".join(f"u.{name}" for name in USER_FIELDS)

# An account, its first session and that session's refresh token. The unique
# constraint on email decides between concurrent signups (UniqueViolationError).
SIGNUP = """
WITH new_user AS (
    INSERT INTO user_account (id, email, name, hashed_password, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $5)
    RETURNING id
), new_session AS (
    INSERT INTO user_session (id, user_id, created_at, last_used_at, expires_at, user_agent)
    SELECT $6::uuid, id, $5::timestamptz, $5::timestamptz, $7::timestamptz, $8::varchar
    FROM new_user
    RETURNING id
)
INSERT INTO refresh_token (token_hash, session_id, created_at)
SELECT $9::varchar, id, $5::timestamptz FROM new_session
"""

# Our own accounts only: an external account's email is its provider's claim.
GET_USER_BY_EMAIL = (
    f"SELECT {USER_COLUMNS} FROM user_account WHERE email = $1 AND external_subject IS NULL"
)

# The account of external subject $1 (a token's `sub`), created as $2 with profile
# $3 (email) and $4 (name) at $5 if it is new, with the one session row an external
# account has (id = the account's id, ending at $6: it lives as long as the account,
# and its deletion, by cascade, is what tells every worker the account is gone). A
# changed email claim updates the profile. No row: a concurrent first request for the
# same subject created it meanwhile (this statement's snapshot predates it): run again.
PROVISION_EXTERNAL = """
WITH found AS (
    SELECT id FROM user_account WHERE external_subject = $1
), refreshed AS (
    UPDATE user_account SET email = $3, updated_at = $5
    WHERE id = (SELECT id FROM found) AND $3::varchar IS NOT NULL AND email IS DISTINCT FROM $3
), created AS (
    INSERT INTO user_account
        (id, email, name, hashed_password, external_subject, created_at, updated_at)
    SELECT $2::uuid, $3::varchar, $4::varchar, NULL, $1::varchar, $5::timestamptz,
        $5::timestamptz
    WHERE NOT EXISTS (SELECT FROM found)
    ON CONFLICT (external_subject) DO NOTHING
    RETURNING id
), account AS (
    SELECT id FROM found UNION ALL SELECT id FROM created
), session AS (
    INSERT INTO user_session (id, user_id, created_at, last_used_at, expires_at, user_agent)
    SELECT id, id, $5::timestamptz, $5::timestamptz, $6::timestamptz, NULL FROM account
    ON CONFLICT (id) DO NOTHING
)
SELECT id FROM account
"""

# A new session for user $1, whose password was just verified against hash $2; $3,
# when not null, replaces that hash (the upgrade on login), but only if it is still
# the stored one: a password changed meanwhile is never overwritten. Returns whether
# the session was started (false: the account was deleted meanwhile).
LOGIN = """
WITH account AS (
    SELECT id FROM user_account WHERE id = $1
), upgraded AS (
    UPDATE user_account SET hashed_password = $3
    WHERE id = $1 AND hashed_password = $2 AND $3::varchar IS NOT NULL
), new_session AS (
    INSERT INTO user_session (id, user_id, created_at, last_used_at, expires_at, user_agent)
    SELECT $4::uuid, id, $5::timestamptz, $5::timestamptz, $6::timestamptz, $7::varchar
    FROM account
    RETURNING id
), new_token AS (
    INSERT INTO refresh_token (token_hash, session_id, created_at)
    SELECT $8::varchar, id, $5::timestamptz FROM new_session
    RETURNING 1
)
SELECT EXISTS (SELECT FROM new_token)
"""

# Spend refresh token $1 (hash) of a live session and, if it was unspent, renew the
# session and add its successor $5. The spend is one `UPDATE ... WHERE spent_at IS
# NULL`: of two concurrent uses only one finds the token unspent (the other waits for
# the row lock, then re-reads it spent). No row: unknown token or ended session.
# `fresh` false: the token had been spent already (reuse).
REFRESH = f"""
WITH found AS (
    SELECT t.session_id, {_U_COLUMNS}
    FROM refresh_token t
    JOIN user_session s ON s.id = t.session_id
    JOIN user_account u ON u.id = s.user_id
    WHERE t.token_hash = $1 AND s.expires_at > $2
), spent AS (
    UPDATE refresh_token SET spent_at = $2
    WHERE token_hash = $1 AND spent_at IS NULL
      AND session_id = (SELECT session_id FROM found)
    RETURNING session_id
), renewed AS (
    UPDATE user_session
    SET last_used_at = $2, expires_at = $3, user_agent = COALESCE($4, user_agent)
    WHERE id = (SELECT session_id FROM spent)
    RETURNING id
), successor AS (
    INSERT INTO refresh_token (token_hash, session_id, created_at)
    SELECT $5::varchar, id, $2::timestamptz FROM renewed
)
SELECT found.*, EXISTS (SELECT FROM spent) AS fresh FROM found
"""

# The per-request session check, one statement: session $1 of user $2, live at $3.
# The same statement writes last_used_at when it is older than $4 (now minus
# TOUCH_INTERVAL), so most checks write nothing and none needs a second round trip.
_TOUCH = """touched AS (
    UPDATE user_session SET last_used_at = $3
    WHERE id = $1 AND user_id = $2 AND expires_at > $3 AND last_used_at < $4
)"""

# ... loading the user (CurrentUser).
AUTHENTICATE = f"""
WITH {_TOUCH}
SELECT {_U_COLUMNS}
FROM user_session s JOIN user_account u ON u.id = s.user_id
WHERE s.id = $1 AND u.id = $2 AND s.expires_at > $3
"""

# ... or only when the session expires (CurrentPrincipal; the foreign key's cascade
# means a session row exists only while its user does).
CHECK_SESSION = f"""
WITH {_TOUCH}
SELECT expires_at FROM user_session WHERE id = $1 AND user_id = $2 AND expires_at > $3
"""

DELETE_SESSION = "DELETE FROM user_session WHERE id = $1"
DELETE_USER_SESSIONS = "DELETE FROM user_session WHERE user_id = $1"

UPDATE_NAME = f"""
UPDATE user_account SET name = $2, updated_at = $3 WHERE id = $1 RETURNING {USER_COLUMNS}
"""

# The new hash $3 replaces the one the current password was verified against ($2),
# and every other session than $5 ends. Returns the user's id, none when the hash
# changed meanwhile.
CHANGE_PASSWORD = """
WITH changed AS (
    UPDATE user_account SET hashed_password = $3, updated_at = $4
    WHERE id = $1 AND hashed_password = $2
    RETURNING id
), ended AS (
    DELETE FROM user_session WHERE user_id = (SELECT id FROM changed) AND id <> $5
)
SELECT id FROM changed
"""

# Foreign keys cascade: sessions, tokens and every row the user owns go with it.
DELETE_USER = "DELETE FROM user_account WHERE id = $1"

LIST_SESSIONS = """
SELECT id, user_id, created_at, last_used_at, expires_at, user_agent
FROM user_session
WHERE user_id = $1 AND expires_at > $2
ORDER BY created_at DESC, id
"""

# Another user's session is "not found" too, so session ids cannot be probed.
REVOKE_SESSION = "DELETE FROM user_session WHERE id = $1 AND user_id = $2 RETURNING id"
