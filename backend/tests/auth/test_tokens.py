"""Access-token rules, checked on GET /auth/me (every authenticated route shares them).

Each hostile token below differs from a token the API accepts (`claims_for` + `forge`,
minted as a sibling service holding SECRET_KEY would) in one respect only."""

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app.core import tokens as token_module
from app.core.config import Settings
from app.core.tokens import AccessClaims, TokenService
from tests.auth.conftest import Forge
from tests.auth.helpers import AUTH, assert_invalid_token, b64url, bearer, unsigned_token
from tests.conftest import UserHandle

Claims = dict[str, Any]
ClaimsFor = Callable[[UserHandle], Claims]


def changed(**changes: Any) -> Callable[[Claims], Claims]:
    return lambda claims: {**claims, **changes}


def without(name: str) -> Callable[[Claims], Claims]:
    return lambda claims: {k: v for k, v in claims.items() if k != name}


NOW = int(time.time())

CLAIM_CASES: dict[str, Callable[[Claims], Claims]] = {
    **{
        f"missing-{name}": without(name)
        for name in ("sub", "sid", "iat", "exp", "iss", "aud", "typ")
    },
    "expired": changed(iat=NOW - 3600, exp=NOW - 60),
    "wrong-audience": changed(aud="another-api"),
    "wrong-issuer": changed(iss="someone-else"),
    "wrong-type": changed(typ="refresh"),
    "string-exp": changed(exp=str(NOW + 600)),
    "string-iat": changed(iat=str(NOW)),
    "null-exp": changed(exp=None),
    "list-exp": changed(exp=[NOW + 600]),
    "bool-exp": changed(exp=True),
    "object-exp": changed(exp={"t": NOW + 600}),
    "nan-exp": changed(exp=float("nan")),
    "infinite-exp": changed(exp=float("inf")),
    "sub-not-uuid": changed(sub="not-a-uuid"),
    "sub-number": changed(sub=12345),
    "sid-not-uuid": changed(sid="not-a-uuid"),
    "sid-number": changed(sid=int("1" * 32)),
    "unknown-session": changed(sid=str(uuid.uuid4())),
    "unknown-user": changed(sub=str(uuid.uuid4())),
}


def tamper_signature(token: str) -> str:
    # The first character: the last one may only carry base64 padding bits.
    head, payload, signature = token.split(".")
    return f"{head}.{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


def swap_payload(token: str, claims: Claims) -> str:
    head, _, signature = token.split(".")
    return f"{head}.{b64url(json.dumps(claims).encode())}.{signature}"


class TestAccessTokenRules:
    async def me(self, client: httpx.AsyncClient, token: str) -> httpx.Response:
        return await client.get(f"{AUTH}/me", headers=bearer(token))

    async def test_token_minted_per_contract_is_accepted(
        self, client: httpx.AsyncClient, user: UserHandle, claims_for: ClaimsFor, forge: Forge
    ) -> None:
        """A sibling service holding SECRET_KEY can mint tokens (HS256, UTF-8 key bytes)."""
        response = await self.me(client, forge(claims_for(user)))
        assert response.status_code == 200, response.text
        assert response.json()["id"] == user.id

    async def test_fractional_numeric_dates_are_accepted(
        self, client: httpx.AsyncClient, user: UserHandle, claims_for: ClaimsFor, forge: Forge
    ) -> None:
        """RFC 7519 NumericDate may have a fraction (e.g. a sibling using time.time())."""
        claims = {**claims_for(user), "iat": time.time(), "exp": time.time() + 600.5}
        assert (await self.me(client, forge(claims))).status_code == 200

    @pytest.mark.parametrize("case", CLAIM_CASES)
    async def test_bad_claims_are_401(
        self,
        client: httpx.AsyncClient,
        user: UserHandle,
        claims_for: ClaimsFor,
        forge: Forge,
        case: str,
    ) -> None:
        assert_invalid_token(await self.me(client, forge(CLAIM_CASES[case](claims_for(user)))))

    @pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
    async def test_other_algorithms_are_401(
        self,
        client: httpx.AsyncClient,
        user: UserHandle,
        claims_for: ClaimsFor,
        forge: Forge,
        algorithm: str,
    ) -> None:
        assert_invalid_token(await self.me(client, forge(claims_for(user), algorithm=algorithm)))

    async def test_alg_none_is_401(
        self, client: httpx.AsyncClient, user: UserHandle, claims_for: ClaimsFor
    ) -> None:
        assert_invalid_token(await self.me(client, unsigned_token(claims_for(user))))

    async def test_asymmetric_alg_header_is_401(
        self, client: httpx.AsyncClient, user: UserHandle, claims_for: ClaimsFor
    ) -> None:
        header = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
        token = f"{header}.{b64url(json.dumps(claims_for(user)).encode())}.{b64url(b'sig')}"
        assert_invalid_token(await self.me(client, token))

    async def test_other_key_is_401(
        self, client: httpx.AsyncClient, user: UserHandle, claims_for: ClaimsFor, forge: Forge
    ) -> None:
        token = forge(claims_for(user), key=b"another-secret-key-of-sufficient-length!")
        assert_invalid_token(await self.me(client, token))

    async def test_tampered_signature_is_401(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        assert_invalid_token(await self.me(client, tamper_signature(user.access_token)))

    async def test_tampered_payload_is_401(
        self,
        client: httpx.AsyncClient,
        user: UserHandle,
        other_user: UserHandle,
        claims_for: ClaimsFor,
    ) -> None:
        """The signature of the user's real token over another user's claims."""
        token = swap_payload(user.access_token, claims_for(other_user))
        assert_invalid_token(await self.me(client, token))

    @pytest.mark.parametrize("wrap", ["{%s}", "urn:uuid:%s", "%s0"])
    async def test_non_canonical_session_id_is_401(
        self,
        client: httpx.AsyncClient,
        user: UserHandle,
        claims_for: ClaimsFor,
        forge: Forge,
        wrap: str,
    ) -> None:
        claims = claims_for(user)
        claims["sid"] = wrap % claims["sid"]
        assert_invalid_token(await self.me(client, forge(claims)))

    async def test_session_of_another_user_is_401(
        self,
        client: httpx.AsyncClient,
        user: UserHandle,
        other_user: UserHandle,
        claims_for: ClaimsFor,
        forge: Forge,
    ) -> None:
        claims = {**claims_for(user), "sid": claims_for(other_user)["sid"]}
        assert_invalid_token(await self.me(client, forge(claims)))

    async def test_deleted_user_is_401(
        self, client: httpx.AsyncClient, user: UserHandle, claims_for: ClaimsFor, forge: Forge
    ) -> None:
        token = forge(claims_for(user))
        deleted = await client.request(
            "DELETE", f"{AUTH}/me", headers=user.headers, json={"password": user.password}
        )
        assert deleted.status_code == 204
        assert_invalid_token(await self.me(client, token))

    async def test_refresh_token_as_bearer_is_401(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        assert_invalid_token(await self.me(client, user.refresh_token))

    async def test_too_long_token_is_401(
        self, client: httpx.AsyncClient, user: UserHandle, claims_for: ClaimsFor, forge: Forge
    ) -> None:
        """Correctly signed and otherwise valid, but longer than any token we issue."""
        token = forge({**claims_for(user), "padding": "p" * 5000})
        assert_invalid_token(await self.me(client, token))

    @pytest.mark.parametrize(
        "token",
        [
            b"garbage",
            b"a.b.c",
            b"...",
            b"e30.e30.",
            b"eyJhbGciOiJIUzI1NiJ9.bm90LWpzb24.c2ln",
            "ÿ.ÿ.ÿ".encode("latin-1"),
            b"\xc3\x28.e30.e30",
        ],
        ids=[
            "word",
            "three-parts",
            "dots",
            "empty-objects",
            "payload-not-json",
            "latin-1",
            "bad-utf8",
        ],
    )
    async def test_garbage_is_401(self, client: httpx.AsyncClient, token: bytes) -> None:
        headers = {"Authorization": b"Bearer " + token}
        assert_invalid_token(await client.get(f"{AUTH}/me", headers=headers))

    async def test_rules_apply_to_every_authenticated_route(
        self, client: httpx.AsyncClient, user: UserHandle, claims_for: ClaimsFor, forge: Forge
    ) -> None:
        token = bearer(forge({**claims_for(user), "typ": "refresh"}))
        responses = [
            await client.get(f"{AUTH}/sessions", headers=token),
            await client.patch(f"{AUTH}/me", headers=token, json={"name": "x"}),
            await client.post(f"{AUTH}/logout", headers=token),
            await client.post(f"{AUTH}/logout-all", headers=token),
        ]
        for response in responses:
            assert_invalid_token(response)
        assert (await client.get(f"{AUTH}/me", headers=user.headers)).status_code == 200


class TestVerifiedTokenCache:
    """A token is verified once per worker; repeats must keep every rule that can change
    between two requests (expiry, the session) and let nothing else in."""

    async def me(self, client: httpx.AsyncClient, token: str) -> httpx.Response:
        return await client.get(f"{AUTH}/me", headers=bearer(token))

    async def test_a_verified_token_still_expires(
        self, client: httpx.AsyncClient, user: UserHandle, claims_for: ClaimsFor, forge: Forge
    ) -> None:
        expires = int(time.time()) + 1
        token = forge({**claims_for(user), "exp": expires})
        assert (await self.me(client, token)).status_code == 200  # verified and remembered
        # PyJWT refuses a token once the current time reaches `exp`.
        await asyncio.sleep(expires + 1.05 - time.time())
        assert_invalid_token(await self.me(client, token))

    async def test_a_verified_token_does_not_vouch_for_a_tampered_copy(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        assert (await self.me(client, user.access_token)).status_code == 200
        assert_invalid_token(await self.me(client, tamper_signature(user.access_token)))
        assert (await self.me(client, user.access_token)).status_code == 200

    async def test_a_verified_token_stops_working_at_logout(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        assert (await self.me(client, user.access_token)).status_code == 200
        assert (await client.post(f"{AUTH}/logout", headers=user.headers)).status_code == 204
        assert_invalid_token(await self.me(client, user.access_token))

    async def test_the_cache_is_bounded(self, settings: Settings) -> None:
        tokens = TokenService(settings)
        user_id = uuid.uuid4()
        minted = [tokens.create_access_token(user_id, uuid.uuid4()) for _ in range(20)]
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(token_module, "VERIFIED_CACHE_SIZE", 8)
            claims = [await tokens.verify(token) for token in minted]
            assert len(tokens._ours._entries) == 8  # the oldest were let go
        assert all(isinstance(c, AccessClaims) for c in claims)
        assert [c.user_id for c in claims if isinstance(c, AccessClaims)] == [user_id] * 20
        # A token that was let go is simply verified again.
        again = await tokens.verify(minted[0])
        assert isinstance(again, AccessClaims)
        assert isinstance(claims[0], AccessClaims)
        assert again.session_id == claims[0].session_id
