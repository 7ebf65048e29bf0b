"""An identity provider for the tests: keys generated per run, a real JWKS endpoint on
a loopback port (ThreadingHTTPServer in a thread), and tokens signed the way Better
Auth's JWT plugin signs them (header `alg` + `kid`; payload = the user object + `sub`,
`iat`, `exp`, `iss`, `aud`)."""

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from tests.conftest import UserHandle

# Better Auth sets `iss` and `aud` to its base URL.
PROVIDER_URL = "http://localhost:3000"
# HS256 tokens (EXTERNAL_JWT_SECRET, BETTER_AUTH_SECRET): the test settings set it.
EXTERNAL_SECRET = "better-auth-secret-for-the-tests-0123456789-abcdef"


@dataclass
class SigningKey:
    kid: str
    algorithm: str  # the JWT `alg`
    private: Any
    jwk: dict[str, Any]  # the public JWK as the JWKS publishes it

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        headers = {"kid": self.kid, **header}
        return jwt.encode(claims, self.private, algorithm=self.algorithm, headers=headers)


def _public_jwk(algorithm: str, private: Any) -> dict[str, Any]:
    public = private.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        jwk: dict[str, Any] = OKPAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    return {**jwk, "alg": algorithm}


def new_key(algorithm: str, *, rsa_bits: int = 2048, publish_alg: bool = True) -> SigningKey:
    if algorithm == "EdDSA":
        private: Any = ed25519.Ed25519PrivateKey.generate()
    elif algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:  # RS256, PS256
        private = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    jwk = _public_jwk(algorithm, private)
    if not publish_alg:
        del jwk["alg"]
    kid = uuid.uuid4().hex
    return SigningKey(kid, algorithm, private, {**jwk, "kid": kid})


def better_auth_claims(sub: str | None = None, **changes: Any) -> dict[str, Any]:
    """What Better Auth's JWT plugin puts in a token (15-minute expiry)."""
    sub = sub or f"ba-{uuid.uuid4().hex}"
    now = int(time.time())
    claims: dict[str, Any] = {
        "id": sub,
        "name": "Ada Lovelace",
        "email": f"{sub}@example.com",
        "emailVerified": True,
        "image": None,
        "createdAt": "2026-12-01T10:00:00.000Z",
        "updatedAt": "2026-12-01T10:00:00.000Z",
        "sub": sub,
        "iat": now,
        "exp": now + 900,
        "iss": PROVIDER_URL,
        "aud": PROVIDER_URL,
    }
    return {**claims, **changes}


def hs256_token(claims: dict[str, Any], secret: str | bytes = EXTERNAL_SECRET) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return jwt.encode(claims, key, algorithm="HS256")


@dataclass
class JwksServer:
    """GET / answers the JWKS of `keys`; `mode` makes it misbehave: "down" (503),
    "hang" (never answers in time), "big" (a body over the API's size limit),
    "redirect-away" / "redirect-same" (302 to another host / to /moved here)."""

    keys: list[SigningKey] = field(default_factory=list)
    mode: str = "ok"
    hits: int = 0
    extra: list[dict[str, Any]] = field(default_factory=list)  # published as they are
    _server: ThreadingHTTPServer | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/auth/jwks"

    def document(self) -> bytes:
        return json.dumps({"keys": [k.jwk for k in self.keys] + self.extra}).encode()

    def start(self) -> "JwksServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits += 1
                mode = owner.mode
                if mode == "hang":
                    owner._stop.wait(30)
                    return
                if mode == "down":
                    self._send(503, b'{"error":"down"}')
                elif mode == "big":
                    self._send(200, b'{"keys": [' + b" " * (300 * 1024) + b"]}")
                elif mode == "redirect-away" and self.path != "/moved":
                    self._redirect("http://localhost:9/api/auth/jwks")
                elif mode == "redirect-same" and self.path != "/moved":
                    self._redirect("/moved")
                else:
                    self._send(200, owner.document())

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _redirect(self, location: str) -> None:
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


async def external_user(client: httpx.AsyncClient, token: str) -> UserHandle:
    """The account an external token signs in to (created by its first request)."""
    response = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    me = response.json()
    assert me["auth_provider"] == "external"
    handle = UserHandle(
        me["email"] or "", "", {"user": me, "access_token": token, "refresh_token": ""}
    )
    return handle
