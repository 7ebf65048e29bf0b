"""The production served process: `python -m app.serve` from backend/ (`make serve`, the
Docker image's command).

uvicorn on uvloop, as `make run` does, with the HTTP protocol of app/core/protocol.py:
uvicorn's httptools protocol plus a head limit (431), head and body deadlines and a
connection limit (503 at once). On SIGTERM uvicorn stops accepting, lets in-flight
requests finish for HTTP_GRACEFUL_TIMEOUT s (then cancels them), and the app's lifespan
closes the database pool. Settings: HOST, PORT, WEB_CONCURRENCY and HTTP_* (config.py).

Why a subclass of uvicorn's httptools protocol and not another server (looked at with
uvicorn 0.54, hypercorn 0.18, granian 2.8): uvicorn's own options cover none of it:
`limit_concurrency` is checked only once a request head has come (a silent connection
is never refused), counts running tasks too and answers text/plain;
`h11_max_incomplete_event_size` bounds the head but answers 400, and h11 parses in pure
Python and has no head or body deadline either. hypercorn (h11 as well) answers 431 at
16 KiB, but its `read_timeout` is per read, so a head dribbled a byte at a time never
trips it, and it has no connection limit. granian (Rust) has a header read timeout (at
most 60 s) and a buffer limit, but no body deadline among its options, and its
`backpressure` caps the requests in progress per worker, with no 503 at connect; it
would also replace uvicorn's process model, signals and logging. A thin subclass keeps httptools' parsing speed and all of uvicorn's lifecycle
(workers, signals, lifespan, graceful stop).
"""

import logging
import resource
import signal
from types import FrameType

import uvicorn

from app.core.config import Settings, get_settings
from app.core.logging import configure_logging
from app.core.protocol import GuardedHttpToolsProtocol

logger = logging.getLogger("app")

# File descriptors a worker needs beside its client connections: the database pool,
# the session listener, the listening socket, logs, the embedded server's files...
_SPARE_FILES = 256


def raise_open_file_limit(connections: int) -> None:
    """Raise the soft RLIMIT_NOFILE to what HTTP_MAX_CONNECTIONS needs (as far as the
    hard limit allows): out of descriptors, accept() fails and new connections wait in
    the listen backlog, unanswered: the queueing the connection limit is there to stop."""
    needed = connections + _SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < needed:
            logger.warning(
                "open file limit %d is below HTTP_MAX_CONNECTIONS + %d: lower "
                "HTTP_MAX_CONNECTIONS or raise the limit (ulimit -n)",
                target,
                _SPARE_FILES,
            )


def _stopped(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
    raise SystemExit(0)


def main(settings: Settings | None = None) -> None:
    # A stop that was asked for is a success. While uvicorn serves, its own handler
    # takes SIGTERM (and shuts down gracefully); then it restores this one and raises
    # the signal again, which under the default disposition would end the process
    # "killed by SIGTERM" (exit status 143) after a clean shutdown.
    signal.signal(signal.SIGTERM, _stopped)
    settings = settings or get_settings()
    # Our JSON logs from the start, in the supervisor too; each worker sets them up
    # again when it imports app.main (log_config=None: uvicorn leaves them alone).
    configure_logging(settings.LOG_LEVEL)
    raise_open_file_limit(settings.HTTP_MAX_CONNECTIONS)
    uvicorn.run(
        "app.main:app",
        host=settings.HOST,
        port=settings.PORT,
        workers=settings.WEB_CONCURRENCY,
        loop="uvloop",
        http=GuardedHttpToolsProtocol,
        ws="none",  # the app has no WebSocket route
        lifespan="on",
        log_config=None,
        # The app writes its own JSON access line, without query strings.
        access_log=False,
        # Whose X-Forwarded-For counts is FORWARDED_ALLOW_IPS alone (app/main.py).
        proxy_headers=False,
        timeout_keep_alive=settings.HTTP_KEEPALIVE_TIMEOUT,
        timeout_graceful_shutdown=settings.HTTP_GRACEFUL_TIMEOUT,
    )


if __name__ == "__main__":
    main()
