"""Tokens from an external identity provider (Better Auth): a real JWKS server on a
loopback port, keys generated per run, tokens signed as Better Auth signs them."""

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from pydantic import SecretStr, ValidationError

from app.core import tokens as token_module
from app.core.config import Settings
from app.main import create_app
from tests.auth.conftest import Forge
from tests.auth.external import (
    PROVIDER_URL,
    JwksServer,
    SigningKey,
    better_auth_claims,
    external_user,
    hs256_token,
    new_key,
)
from tests.auth.helpers import (
    AUTH,
    assert_invalid_token,
    assert_problem,
    b64url,
    bearer,
    login,
    unsigned_token,
)
from tests.conftest import PASSWORD, UserHandle, client_for

ALGORITHMS = ("EdDSA", "ES256", "RS256", "PS256")


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    """One key per algorithm, generated for this run."""
    return {algorithm: new_key(algorithm) for algorithm in ALGORITHMS}


@pytest.fixture
def jwks(keys: dict[str, SigningKey]) -> Iterator[JwksServer]:
    server = JwksServer(keys=list(keys.values())).start()
    try:
        yield server
    finally:
        server.stop()


AppMaker = Callable[..., FastAPI]


@pytest.fixture
async def make_external_app(settings: Settings, jwks: JwksServer) -> AsyncIterator[AppMaker]:
    """Apps that trust `jwks` (with iss/aud pinned to the provider's base URL), each with
    its own key cache; closed after the test."""
    apps: list[FastAPI] = []

    def make(**overrides: Any) -> FastAPI:
        changes = {
            "EXTERNAL_JWKS_URL": jwks.url,
            "EXTERNAL_JWT_ISSUER": PROVIDER_URL,
            "EXTERNAL_JWT_AUDIENCE": PROVIDER_URL,
            **overrides,
        }
        app = create_app(settings.model_copy(update=changes))
        apps.append(app)
        return app

    yield make
    for app in apps:
        await app.state.auth.tokens.close()
        await app.state.database.close()
        app.state.auth.hasher.close()


@pytest.fixture
async def ext_client(make_external_app: AppMaker) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(make_external_app()) as client:
        yield client


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(f"{AUTH}/me", headers=bearer(token))


async def user_rows(db: Any, subject: str) -> list[Any]:
    rows: list[Any] = await db.fetch(
        "SELECT id, email, name, hashed_password FROM user_account WHERE external_subject = $1",
        subject,
    )
    return rows


class TestEachAlgorithm:
    @pytest.mark.parametrize("algorithm", ALGORITHMS)
    async def test_a_better_auth_token_signs_in(
        self, ext_client: httpx.AsyncClient, keys: dict[str, SigningKey], db: Any, algorithm: str
    ) -> None:
        claims = better_auth_claims()
        response = await me(ext_client, keys[algorithm].sign(claims))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["auth_provider"] == "external"
        assert body["email"] == claims["email"]
        assert body["name"] == "Ada Lovelace"
        [row] = await user_rows(db, claims["sub"])
        assert str(row["id"]) == body["id"]
        assert row["hashed_password"] is None

    async def test_a_shared_secret_hs256_token_signs_in(
        self, client: httpx.AsyncClient, db: Any
    ) -> None:
        claims = better_auth_claims()
        response = await me(client, hs256_token(claims))
        assert response.status_code == 200, response.text
        assert response.json()["auth_provider"] == "external"
        assert len(await user_rows(db, claims["sub"])) == 1

    async def test_the_same_sub_is_always_the_same_account(
        self, ext_client: httpx.AsyncClient, keys: dict[str, SigningKey]
    ) -> None:
        claims = better_auth_claims()
        ids = {
            (await me(ext_client, keys[alg].sign({**claims, "iat": claims["iat"] - n}))).json()[
                "id"
            ]
            for n, alg in enumerate(ALGORITHMS)
        }
        ids.add((await me(ext_client, hs256_token(claims))).json()["id"])
        assert len(ids) == 1

    async def test_a_jwk_without_alg_verifies_the_algorithm_its_type_implies(
        self, make_external_app: AppMaker, jwks: JwksServer
    ) -> None:
        implicit = {alg: new_key(alg, publish_alg=False) for alg in ("EdDSA", "ES256", "RS256")}
        jwks.keys = list(implicit.values())
        async with client_for(make_external_app()) as client:
            for key in implicit.values():
                assert (await me(client, key.sign(better_auth_claims()))).status_code == 200
            # RSA without `alg` means RS256 only: a PS256 signature by the same key is refused.
            rsa = implicit["RS256"]
            ps = SigningKey(rsa.kid, "PS256", rsa.private, rsa.jwk)
            assert_invalid_token(await me(client, ps.sign(better_auth_claims())))


class TestForgedAndConfused:
    @pytest.fixture
    def valid(self) -> dict[str, Any]:
        return better_auth_claims()

    async def test_alg_none(self, ext_client: httpx.AsyncClient, valid: dict[str, Any]) -> None:
        assert_invalid_token(await me(ext_client, unsigned_token(valid)))

    @pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
    async def test_hs256_keyed_with_the_public_key(
        self,
        ext_client: httpx.AsyncClient,
        keys: dict[str, SigningKey],
        valid: dict[str, Any],
        algorithm: str,
    ) -> None:
        """The classic confusion: HMAC with the public key's bytes as the secret."""
        key = keys[algorithm]
        public = key.private.public_key()
        candidates = [
            public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            json.dumps(key.jwk).encode(),
        ]
        for secret in candidates:
            header = b64url(json.dumps({"alg": "HS256", "kid": key.kid}).encode())
            payload = b64url(json.dumps(valid).encode())
            mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
            assert_invalid_token(await me(ext_client, f"{header}.{payload}.{b64url(mac)}"))

    async def test_alg_swapped_in_the_header(
        self, ext_client: httpx.AsyncClient, keys: dict[str, SigningKey], valid: dict[str, Any]
    ) -> None:
        # Signed by the RS256 key with PS256 (the JWK says RS256), and the EC key's kid
        # on an EdDSA signature.
        rsa = keys["RS256"]
        swapped = SigningKey(rsa.kid, "PS256", rsa.private, rsa.jwk)
        assert_invalid_token(await me(ext_client, swapped.sign(valid)))
        eddsa = keys["EdDSA"]
        wrong_kid = eddsa.sign(valid, kid=keys["ES256"].kid)
        assert_invalid_token(await me(ext_client, wrong_kid))

    async def test_a_tampered_signature(
        self, ext_client: httpx.AsyncClient, keys: dict[str, SigningKey], valid: dict[str, Any]
    ) -> None:
        token = keys["EdDSA"].sign(valid)
        head, payload, signature = token.split(".")
        other = "A" if signature[0] != "A" else "B"
        assert_invalid_token(await me(ext_client, f"{head}.{payload}.{other}{signature[1:]}"))
        # ...and a changed payload under the original signature.
        forged = b64url(json.dumps({**valid, "sub": "someone-else"}).encode())
        assert_invalid_token(await me(ext_client, f"{head}.{forged}.{signature}"))

    @pytest.mark.parametrize(
        "changes",
        [
            {"iss": "https://evil.example"},
            {"aud": "https://another-api.example"},
            {"exp": int(time.time()) - 120},
            {"nbf": int(time.time()) + 600},
            {"iat": int(time.time()) + 600},
            {"exp": str(int(time.time()) + 600)},
            {"exp": None},
            {"sub": "s" * 256},
            {"sub": ""},
            {"sub": 12345},
            {"sub": "bad\u0000sub"},
        ],
        ids=lambda c: ",".join(f"{k}={str(v)[:12]}" for k, v in c.items()),
    )
    async def test_bad_claims(
        self,
        ext_client: httpx.AsyncClient,
        keys: dict[str, SigningKey],
        valid: dict[str, Any],
        changes: dict[str, Any],
    ) -> None:
        token = keys["ES256"].sign({**valid, **changes})
        assert_invalid_token(await me(ext_client, token))

    @pytest.mark.parametrize("claim", ["sub", "exp"])
    async def test_required_claims(
        self,
        ext_client: httpx.AsyncClient,
        keys: dict[str, SigningKey],
        valid: dict[str, Any],
        claim: str,
    ) -> None:
        claims = {k: v for k, v in valid.items() if k != claim}
        assert_invalid_token(await me(ext_client, keys["EdDSA"].sign(claims)))
        assert_invalid_token(await me(ext_client, hs256_token(claims)))

    async def test_a_sub_of_255_characters_is_fine(
        self, ext_client: httpx.AsyncClient, keys: dict[str, SigningKey]
    ) -> None:
        claims = better_auth_claims(sub="s" * 255)
        assert (await me(ext_client, keys["EdDSA"].sign(claims))).status_code == 200

    async def test_clock_leeway_is_under_a_minute(
        self, ext_client: httpx.AsyncClient, keys: dict[str, SigningKey], valid: dict[str, Any]
    ) -> None:
        now = int(time.time())
        recent = keys["EdDSA"].sign({**valid, "exp": now - 5, "nbf": now + 5})
        assert (await me(ext_client, recent)).status_code == 200
        stale = keys["EdDSA"].sign({**valid, "exp": now - 61})
        assert_invalid_token(await me(ext_client, stale))

    async def test_an_hs256_token_with_the_wrong_secret(
        self, client: httpx.AsyncClient, valid: dict[str, Any]
    ) -> None:
        assert_invalid_token(await me(client, hs256_token(valid, "x" * 48)))

    async def test_our_claims_in_an_external_token(
        self,
        ext_client: httpx.AsyncClient,
        keys: dict[str, SigningKey],
        user: UserHandle,
        claims_for: Callable[[UserHandle], dict[str, Any]],
    ) -> None:
        """A token the provider signed but shaped like ours (our iss/aud, sid, typ, our
        user's id as sub) is not one of ours, and maps to no local account."""
        ours = claims_for(user)
        assert_invalid_token(await me(ext_client, keys["EdDSA"].sign(ours)))
        assert_invalid_token(await me(ext_client, hs256_token(ours)))
        # Only the typ/iss give it away: without them it is an external subject that
        # happens to look like our user's id, and gets an account of its own.
        shaped = {**better_auth_claims(), "sub": user.id, "sid": ours["sid"]}
        response = await me(ext_client, keys["EdDSA"].sign(shaped))
        assert response.status_code == 200
        assert response.json()["id"] != user.id
        assert response.json()["auth_provider"] == "external"

    async def test_external_claims_signed_with_our_key(
        self, ext_client: httpx.AsyncClient, forge: Forge, valid: dict[str, Any]
    ) -> None:
        assert_invalid_token(await me(ext_client, forge(valid)))

    async def test_an_unknown_kid_after_a_refetch(
        self, ext_client: httpx.AsyncClient, jwks: JwksServer, valid: dict[str, Any]
    ) -> None:
        stranger = new_key("EdDSA")  # never published
        assert_invalid_token(await me(ext_client, stranger.sign(valid)))
        assert jwks.hits == 1  # one fetch: first use, and the refetch it implies


class TestKeyRotation:
    async def test_a_new_kid_is_picked_up_at_once_and_a_removed_one_stops(
        self,
        ext_client: httpx.AsyncClient,
        jwks: JwksServer,
        keys: dict[str, SigningKey],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(token_module, "JWKS_REFETCH_INTERVAL", 1.0)  # 10 s in production
        old = keys["EdDSA"]
        old_token = old.sign(better_auth_claims())
        assert (await me(ext_client, old_token)).status_code == 200
        assert jwks.hits == 1
        await asyncio.sleep(1.0)  # the refetch limit
        rotated = new_key("EdDSA")
        jwks.keys = [rotated]  # the old key is gone
        assert (await me(ext_client, rotated.sign(better_auth_claims()))).status_code == 200
        assert jwks.hits == 2
        # The old key's tokens, remembered or new, stop working.
        assert_invalid_token(await me(ext_client, old_token))
        assert_invalid_token(await me(ext_client, old.sign(better_auth_claims())))

    async def test_unknown_kids_refetch_at_most_once_every_ten_seconds(
        self, ext_client: httpx.AsyncClient, jwks: JwksServer, keys: dict[str, SigningKey]
    ) -> None:
        assert (await me(ext_client, keys["ES256"].sign(better_auth_claims()))).status_code == 200
        strangers = [new_key("ES256") for _ in range(5)]
        responses = await asyncio.gather(
            *(me(ext_client, k.sign(better_auth_claims())) for k in strangers)
        )
        for response in responses:
            assert_invalid_token(response)
        assert jwks.hits == 1  # the first fetch was under 10 s ago: no refetch

    async def test_concurrent_first_uses_share_one_fetch(
        self, ext_client: httpx.AsyncClient, jwks: JwksServer, keys: dict[str, SigningKey]
    ) -> None:
        tokens = [keys[a].sign(better_auth_claims()) for a in ALGORITHMS for _ in range(3)]
        responses = await asyncio.gather(*(me(ext_client, t) for t in tokens))
        assert [r.status_code for r in responses] == [200] * len(tokens)
        assert jwks.hits == 1


class TestJwksUnavailable:
    async def test_down_without_cached_keys_is_503_with_retry_after(
        self, ext_client: httpx.AsyncClient, jwks: JwksServer, keys: dict[str, SigningKey]
    ) -> None:
        jwks.mode = "down"
        response = await me(ext_client, keys["EdDSA"].sign(better_auth_claims()))
        assert_problem(response, 503, "identity_provider_unavailable")
        assert int(response.headers["retry-after"]) >= 1
        # While the refetch limit holds, the answer stays 503 (not 401) without a fetch.
        response = await me(ext_client, keys["ES256"].sign(better_auth_claims()))
        assert_problem(response, 503, "identity_provider_unavailable")
        assert jwks.hits == 1

    async def test_unreachable_host_is_503(
        self, make_external_app: AppMaker, keys: dict[str, SigningKey]
    ) -> None:
        app = make_external_app(EXTERNAL_JWKS_URL="http://127.0.0.1:9/api/auth/jwks")
        async with client_for(app) as client:
            response = await me(client, keys["EdDSA"].sign(better_auth_claims()))
        assert_problem(response, 503, "identity_provider_unavailable")

    async def test_a_hanging_jwks_is_503_within_five_seconds(
        self, ext_client: httpx.AsyncClient, jwks: JwksServer, keys: dict[str, SigningKey]
    ) -> None:
        jwks.mode = "hang"
        started = time.monotonic()
        response = await me(ext_client, keys["EdDSA"].sign(better_auth_claims()))
        elapsed = time.monotonic() - started
        assert_problem(response, 503, "identity_provider_unavailable")
        assert elapsed < 5.0, f"took {elapsed:.1f} s"

    async def test_cached_keys_keep_working_while_it_is_down(
        self, make_external_app: AppMaker, jwks: JwksServer, keys: dict[str, SigningKey]
    ) -> None:
        async with client_for(make_external_app(EXTERNAL_JWKS_CACHE_SECONDS=1)) as client:
            assert (await me(client, keys["EdDSA"].sign(better_auth_claims()))).status_code == 200
            jwks.mode = "down"
            await asyncio.sleep(1.1)  # the keys are stale now; the refetch fails
            fresh = keys["RS256"].sign(better_auth_claims())
            assert (await me(client, fresh)).status_code == 200
            assert jwks.hits == 2

    @pytest.mark.parametrize("mode", ["big", "redirect-away"])
    async def test_an_oversized_or_redirected_jwks_is_refused(
        self,
        ext_client: httpx.AsyncClient,
        jwks: JwksServer,
        keys: dict[str, SigningKey],
        mode: str,
    ) -> None:
        jwks.mode = mode
        response = await me(ext_client, keys["EdDSA"].sign(better_auth_claims()))
        assert_problem(response, 503, "identity_provider_unavailable")

    async def test_a_redirect_on_the_same_host_is_followed(
        self, ext_client: httpx.AsyncClient, jwks: JwksServer, keys: dict[str, SigningKey]
    ) -> None:
        jwks.mode = "redirect-same"
        response = await me(ext_client, keys["EdDSA"].sign(better_auth_claims()))
        assert response.status_code == 200
        assert jwks.hits == 2

    async def test_unusable_keys_are_skipped(
        self, make_external_app: AppMaker, jwks: JwksServer, keys: dict[str, SigningKey]
    ) -> None:
        weak = new_key("RS256", rsa_bits=1024)
        encryption = {**keys["ES256"].jwk, "use": "enc", "kid": "enc-key"}
        jwks.keys = [weak, keys["EdDSA"]]
        jwks.extra = [encryption, {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}, {"kty": "EC"}]
        async with client_for(make_external_app()) as client:
            assert (await me(client, keys["EdDSA"].sign(better_auth_claims()))).status_code == 200
            assert_invalid_token(await me(client, weak.sign(better_auth_claims())))
            enc = SigningKey("enc-key", "ES256", keys["ES256"].private, encryption)
            assert_invalid_token(await me(client, enc.sign(better_auth_claims())))


class TestAccounts:
    async def test_two_subs_with_the_same_email_are_two_accounts(
        self, ext_client: httpx.AsyncClient, keys: dict[str, SigningKey], user: UserHandle
    ) -> None:
        """And neither is linked to the local account that has that email."""
        first = await me(ext_client, keys["EdDSA"].sign(better_auth_claims(email=user.email)))
        second = await me(ext_client, keys["EdDSA"].sign(better_auth_claims(email=user.email)))
        ids = {first.json()["id"], second.json()["id"]}
        assert len(ids) == 2
        assert user.id not in ids
        assert first.json()["email"] == second.json()["email"] == user.email
        # The local account still signs in with its password, and is still itself.
        response = await login(ext_client, user.email, PASSWORD)
        assert response.status_code == 200
        assert response.json()["user"]["id"] == user.id

    async def test_a_local_signup_with_an_external_accounts_email(
        self, client: httpx.AsyncClient
    ) -> None:
        claims = better_auth_claims()
        assert (await me(client, hs256_token(claims))).status_code == 200
        response = await client.post(
            f"{AUTH}/signup", json={"email": claims["email"], "password": PASSWORD}
        )
        assert response.status_code == 201
        assert response.json()["user"]["auth_provider"] == "local"

    async def test_concurrent_first_requests_create_one_account(
        self, client: httpx.AsyncClient, db: Any
    ) -> None:
        claims = better_auth_claims()
        tokens = [hs256_token({**claims, "iat": claims["iat"] - n}) for n in range(8)]
        responses = await asyncio.gather(*(me(client, t) for t in tokens))
        assert [r.status_code for r in responses] == [200] * 8
        assert len({r.json()["id"] for r in responses}) == 1
        assert len(await user_rows(db, claims["sub"])) == 1

    async def test_profile_from_claims_and_patch_me(self, client: httpx.AsyncClient) -> None:
        claims = better_auth_claims(name="<b>Grace</b> Hopper", email="  Grace@Example.COM ")
        token = hs256_token(claims)
        body = (await me(client, token)).json()
        assert body["name"] == "Grace Hopper"
        assert body["email"] == "grace@example.com"
        response = await client.patch(f"{AUTH}/me", json={"name": "G."}, headers=bearer(token))
        assert response.status_code == 200
        assert response.json()["name"] == "G."
        # A missing email claim is fine: the account just has none.
        bare = {k: v for k, v in better_auth_claims().items() if k not in ("email", "name")}
        body = (await me(client, hs256_token(bare))).json()
        assert body["email"] is None
        assert body["name"] is None

    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("POST", "/logout", None),
            ("POST", "/logout-all", None),
            ("GET", "/sessions", None),
            ("DELETE", f"/sessions/{uuid.uuid4()}", None),
            ("POST", "/password", {"current_password": "x" * 10, "new_password": "y" * 12 + "!Zq"}),
            ("POST", "/refresh", {"refresh_token": "not-a-real-one"}),
        ],
    )
    async def test_session_and_password_routes_are_403(
        self, client: httpx.AsyncClient, method: str, path: str, body: Any
    ) -> None:
        token = hs256_token(better_auth_claims())
        response = await client.request(method, f"{AUTH}{path}", json=body, headers=bearer(token))
        assert_problem(response, 403, "external_account")

    async def test_delete_me_without_a_password_and_coming_back(
        self, client: httpx.AsyncClient, db: Any
    ) -> None:
        claims = better_auth_claims()
        token = hs256_token(claims)
        first = await external_user(client, token)
        created = await client.post("/api/v1/tasks", json={"title": "mine"}, headers=first.headers)
        assert created.status_code == 201
        assert (await client.delete(f"{AUTH}/me", headers=first.headers)).status_code == 204
        assert await user_rows(db, claims["sub"]) == []
        assert (
            await db.fetchval("SELECT count(*) FROM task WHERE user_id = $1", uuid.UUID(first.id))
            == 0
        )
        # The provider still vouches for the subject: its next token starts afresh.
        again = await external_user(client, token)
        assert again.id != first.id
        listed = await client.get("/api/v1/tasks", headers=again.headers)
        assert listed.json()["total"] == 0

    async def test_a_deletion_seen_by_another_worker(
        self, make_app: Callable[..., FastAPI], client: httpx.AsyncClient
    ) -> None:
        """Worker B remembers the subject's account; worker A deletes it: B's next
        request finds the account gone and provisions a new one (no stuck 401)."""
        token = hs256_token(better_auth_claims())
        async with client_for(make_app()) as other_worker:
            before = await external_user(other_worker, token)
            assert (await client.delete(f"{AUTH}/me", headers=before.headers)).status_code == 204
            response = await other_worker.post(
                "/api/v1/tasks", json={"title": "after"}, headers=before.headers
            )
            assert response.status_code == 201, response.text
            after = await external_user(other_worker, token)
            assert after.id != before.id


class TestCompatRoutes:
    async def test_the_sub_or_the_id_in_the_path(self, client: httpx.AsyncClient) -> None:
        claims = better_auth_claims()
        token = hs256_token(claims)
        handle = await external_user(client, token)
        for owner in (claims["sub"], handle.id):
            response = await client.post(
                f"/api/{owner}/tasks", json={"title": f"via {owner[:6]}"}, headers=bearer(token)
            )
            assert response.status_code == 201, response.text
        listed = await client.get(f"/api/{claims['sub']}/tasks", headers=bearer(token))
        assert listed.json()["total"] == 2

    async def test_another_subject_or_user_in_the_path_is_403(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        theirs, mine = better_auth_claims(), better_auth_claims()
        await external_user(client, hs256_token(theirs))
        token = hs256_token(mine)
        for owner in (theirs["sub"], user.id):
            response = await client.get(f"/api/{owner}/tasks", headers=bearer(token))
            assert_problem(response, 403, "forbidden")
        # ...and a local user cannot use an external subject's sub either.
        response = await client.get(f"/api/{theirs['sub']}/tasks", headers=user.headers)
        assert_problem(response, 403, "forbidden")


class TestLocalAuthDisabled:
    @pytest.fixture
    async def external_only(self, make_external_app: AppMaker) -> AsyncIterator[httpx.AsyncClient]:
        async with client_for(make_external_app(LOCAL_AUTH_ENABLED=False)) as client:
            yield client

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", "/signup"),
            ("POST", "/login"),
            ("POST", "/token"),
            ("POST", "/refresh"),
            ("POST", "/password"),
            ("POST", "/logout"),
            ("POST", "/logout-all"),
            ("GET", "/sessions"),
            ("DELETE", f"/sessions/{uuid.uuid4()}"),
        ],
    )
    async def test_our_sign_in_routes_are_404(
        self, external_only: httpx.AsyncClient, method: str, path: str
    ) -> None:
        body = {"email": "a@example.com", "password": PASSWORD}
        response = await external_only.request(method, f"{AUTH}{path}", json=body)
        assert_problem(response, 404, "not_found")

    async def test_our_tokens_are_refused_and_external_ones_work(
        self,
        external_only: httpx.AsyncClient,
        keys: dict[str, SigningKey],
        user: UserHandle,
    ) -> None:
        assert_invalid_token(await me(external_only, user.access_token))
        response = await me(external_only, keys["EdDSA"].sign(better_auth_claims()))
        assert response.status_code == 200
        assert response.json()["auth_provider"] == "external"


class TestRemembered:
    async def test_a_remembered_external_token_still_expires_on_time(
        self,
        ext_client: httpx.AsyncClient,
        keys: dict[str, SigningKey],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(token_module, "EXTERNAL_LEEWAY", 0)
        expires = int(time.time()) + 2
        token = keys["EdDSA"].sign(better_auth_claims(exp=expires))
        assert (await me(ext_client, token)).status_code == 200  # verified and remembered
        await asyncio.sleep(expires + 0.05 - time.time())
        assert_invalid_token(await me(ext_client, token))

    async def test_a_known_subject_costs_one_statement_or_none(
        self, ext_client: httpx.AsyncClient, keys: dict[str, SigningKey]
    ) -> None:
        from tests.conftest import recorded_statements

        token = keys["EdDSA"].sign(better_auth_claims())
        app = ext_client._transport.app  # type: ignore[attr-defined]
        assert (await ext_client.get("/api/v1/tasks", headers=bearer(token))).status_code == 200
        with recorded_statements(app) as statements:
            response = await ext_client.get("/api/v1/tasks", headers=bearer(token))
        assert response.status_code == 200
        # No provisioning, no JWKS: the session check (no listener in these tests) and
        # the list itself.
        assert len(statements) == 2, statements


class TestSettings:
    def base(self, **values: Any) -> dict[str, Any]:
        return {"ENVIRONMENT": "production", "SECRET_KEY": "k" * 20 + "0123456789abcdef", **values}

    @pytest.mark.parametrize(
        "url",
        ["http://idp.example.com/api/auth/jwks", "ftp://idp.example.com/jwks", "not a url"],
    )
    def test_plain_http_jwks_is_refused_outside_development(self, url: str) -> None:
        with pytest.raises(ValidationError, match="EXTERNAL_JWKS_URL"):
            Settings(**self.base(EXTERNAL_JWKS_URL=url))

    @pytest.mark.parametrize(
        "url",
        [
            "https://idp.example.com/api/auth/jwks",
            "http://localhost:3000/api/auth/jwks",
            "http://127.0.0.1:3000/api/auth/jwks",
            "http://[::1]:3000/api/auth/jwks",
        ],
    )
    def test_https_or_loopback_http_is_accepted(self, url: str) -> None:
        assert Settings(**self.base(EXTERNAL_JWKS_URL=url)).EXTERNAL_JWKS_URL == url

    def test_the_secret_is_long_and_not_ours(self) -> None:
        with pytest.raises(ValidationError, match="at least 32 bytes"):
            Settings(**self.base(EXTERNAL_JWT_SECRET="short"))
        ours = self.base()["SECRET_KEY"]
        with pytest.raises(ValidationError, match="differ from SECRET_KEY"):
            Settings(**self.base(EXTERNAL_JWT_SECRET=ours))

    def test_better_auth_secret_is_an_alias(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("EXTERNAL_JWT_SECRET", raising=False)
        monkeypatch.setenv("BETTER_AUTH_SECRET", "b" * 16 + "0123456789abcdefXYZ")
        secret = Settings(**self.base()).EXTERNAL_JWT_SECRET
        assert isinstance(secret, SecretStr)
        assert secret.get_secret_value() == "b" * 16 + "0123456789abcdefXYZ"

    def test_external_only_needs_a_provider(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("EXTERNAL_JWT_SECRET", raising=False)
        with pytest.raises(ValidationError, match="LOCAL_AUTH_ENABLED=false needs"):
            Settings(**self.base(LOCAL_AUTH_ENABLED=False))


async def test_the_document_leaves_out_our_sign_in_when_it_is_off(
    make_external_app: AppMaker,
) -> None:
    async with client_for(make_external_app(LOCAL_AUTH_ENABLED=False)) as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert f"{AUTH}/signup" not in paths
    assert f"{AUTH}/sessions/{{session_id}}" not in paths
    assert set(paths[f"{AUTH}/me"]) == {"get", "patch", "delete"}
    assert "/api/v1/tasks" in paths
