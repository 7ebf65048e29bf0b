"""The list with our token and with a Better Auth token, alternated request by request in
one process (httpx on the ASGI app, no network): CPU and wall time per request of each.
Two kinds of request measured one right after the other see the same machine, which the
wrk points (seconds apart) cannot promise on 2 shared cores.

    cd backend && taskset -c 0 ../.venv/bin/python -m bench.alternate [--pairs 3000]

Needs the bench database seeded, with user 1's external twin (`bench-external-1`, made
by the first `list_external` run); reads only.
"""

import argparse
import asyncio
import os
import sys
import time

import httpx

from bench.idp import IdentityProvider
from bench.points import API, LIST_USER
from bench.run import DEFAULT_DSN
from bench.seed import EMAIL_PATTERN

WARM_UP = 50


async def measure(dsn: str, password: str, pairs: int, idp: IdentityProvider) -> None:
    from app.core.config import Settings
    from app.main import create_app

    settings = Settings(
        DATABASE_URL=dsn.replace("postgresql://", "postgresql+asyncpg://", 1),
        RATE_LIMIT_ENABLED=False,
        LOG_LEVEL="WARNING",
        **dict(item.split("=", 1) for item in idp.server_env()),  # type: ignore[arg-type]
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client,
    ):
        login = {"email": EMAIL_PATTERN.format(LIST_USER), "password": password}
        response = await client.post(f"{API}/auth/login", json=login)
        response.raise_for_status()
        tokens = {
            "ours": response.json()["access_token"],
            "Better Auth": idp.token(f"bench-external-{LIST_USER}"),
        }
        headers = {name: {"Authorization": f"Bearer {t}"} for name, t in tokens.items()}
        sizes = {}
        for name, header in headers.items():
            for _ in range(WARM_UP):
                response = await client.get(f"{API}/tasks", headers=header)
                response.raise_for_status()
            sizes[name] = len(response.content)
        cpu = dict.fromkeys(headers, 0.0)
        wall = dict.fromkeys(headers, 0.0)
        names = list(headers)
        for n in range(pairs):
            for name in names if n % 2 == 0 else names[::-1]:
                cpu_start, wall_start = time.process_time(), time.perf_counter()
                response = await client.get(f"{API}/tasks", headers=headers[name])
                cpu[name] += time.process_time() - cpu_start
                wall[name] += time.perf_counter() - wall_start
                if response.status_code != 200:
                    raise SystemExit(f"{name}: {response.status_code} {response.text[:200]}")
    for name in names:
        sys.stdout.write(
            f"{name:12} token {len(tokens[name]):4} chars, body {sizes[name]} bytes: "
            f"CPU {cpu[name] / pairs * 1e6:.0f} µs/request, wall {wall[name] / pairs * 1e6:.0f}\n"
        )
    cpu_ratio, wall_ratio = cpu["Better Auth"] / cpu["ours"], wall["Better Auth"] / wall["ours"]
    sys.stdout.write(
        f"Better Auth / ours: CPU {cpu_ratio:.3f}, wall {wall_ratio:.3f} ({pairs} pairs)\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.alternate")
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--password", default="bench-password-123")
    parser.add_argument("--pairs", type=int, default=3000)
    args = parser.parse_args()
    os.environ.setdefault("SECRET_KEY", "bench-alternate-" + os.urandom(24).hex())
    idp = IdentityProvider()
    try:
        asyncio.run(measure(args.dsn, args.password, args.pairs, idp))
    finally:
        idp.stop()


if __name__ == "__main__":
    main()
