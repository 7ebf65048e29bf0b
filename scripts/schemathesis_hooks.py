"""Schemathesis hooks for scripts/schemathesis: the bearer token of the user the script
signed up, fetched again by logging in whenever a response is 401 (a fuzzed
POST /auth/logout or /auth/logout-all ends the session the run was using; the request
that met the 401 is then replayed with the new token)."""

import os

import requests
import schemathesis

BASE = os.environ["TODO_API_BASE"]


@schemathesis.auth(refresh_interval=None, retry_on=[401])
class BearerToken:
    def __init__(self) -> None:
        self.token = os.environ["TODO_API_TOKEN"]  # from the sign-up
        self.fresh = True

    def get(self, case: object, ctx: object) -> str:
        if self.fresh:  # the first call: the sign-up's token
            self.fresh = False
            return self.token
        response = requests.post(
            f"{BASE}/api/v1/auth/login",
            json={"email": os.environ["TODO_API_EMAIL"], "password": os.environ["TODO_API_PASSWORD"]},
            timeout=10,
        )
        if response.status_code == 200:  # else (429 with rate limits on) keep the last one
            self.token = response.json()["access_token"]
        return self.token

    def set(self, case: schemathesis.Case, data: str, ctx: object) -> None:
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
