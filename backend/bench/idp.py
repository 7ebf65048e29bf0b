"""A stand-in for a Better Auth front end, for the `list_external` point: an Ed25519 key
generated per run, its JWKS served on a loopback port (a thread of the harness), and
tokens signed as Better Auth's JWT plugin signs them (header `alg: EdDSA` + `kid`;
payload = the user object + `sub`, `iat`, `exp` 15 minutes on, `iss` and `aud`)."""

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ed25519
from jwt.algorithms import OKPAlgorithm

from bench.procs import HOST

BASE_URL = "http://localhost:3000"  # Better Auth's iss and aud: its base URL
TOKEN_LIFETIME_S = 900


class IdentityProvider:
    def __init__(self) -> None:
        self._key = ed25519.Ed25519PrivateKey.generate()
        self.kid = uuid.uuid4().hex
        jwk = OKPAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        body = json.dumps({"keys": [{**jwk, "alg": "EdDSA", "kid": self.kid}]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def jwks_url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}/api/auth/jwks"

    def server_env(self) -> list[str]:
        """Our server's settings that trust this provider (as `--server-env` items)."""
        return [
            f"EXTERNAL_JWKS_URL={self.jwks_url}",
            f"EXTERNAL_JWT_ISSUER={BASE_URL}",
            f"EXTERNAL_JWT_AUDIENCE={BASE_URL}",
        ]

    def token(self, sub: str) -> str:
        now = int(time.time())
        claims = {
            "id": sub,
            "name": "Bench External",
            "email": f"{sub}@example.com",
            "emailVerified": True,
            "image": None,
            "createdAt": "2026-12-01T10:00:00.000Z",
            "updatedAt": "2026-12-01T10:00:00.000Z",
            "sub": sub,
            "iat": now,
            "exp": now + TOKEN_LIFETIME_S,
            "iss": BASE_URL,
            "aud": BASE_URL,
        }
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self.kid})

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
