"""The HTTP protocol of the served process (app/serve.py): uvicorn's httptools protocol
with the limits it lacks.

Measured with uvicorn 0.54 + httptools (PITFALLS.md): no limit on the request head (a
32 MB header and 2,000 headers were accepted), no deadline for a head or a body that
dribbles in (a slowloris held a worker 60 s+), and a connection that never sends a
request is never closed (10,000 stayed open). uvicorn's own `limit_concurrency` does not
help: it is checked only once a request head has arrived (a silent connection is never
refused), counts running tasks as well, and answers in plain text.

So, before the app sees anything:

- a request line and header lines over `MAX_HEAD_BYTES` in total, or more than
  `MAX_HEADERS` header lines: 431 `headers_too_large`, and the connection is closed;
- the head must be complete `header_timeout` s after the connection opened (or after the
  previous response on it ended): else the connection is closed, with a 408 when part
  of a head had come;
- a body must not pause longer than `body_timeout` s, nor take longer than
  `body_total_timeout` s in all: else 408 (when no response has started) and close; the
  app's receive() gets `http.disconnect`. While uvicorn itself holds the body back (the
  app has not read what came, or waits to send `100 Continue`), the client is not late;
- beyond `max_connections` open connections in this process, a new one is answered 503
  `server_busy` with Retry-After at once and closed, without reading its request.

The deadlines cost no timer per request: each request stores a timestamp or two, and one
timer per process sweeps the open connections every `sweep_interval` s, so a deadline
fires up to that much late. uvicorn's keep-alive timer is kept as it is.

A refused connection is answered, half-closed, and read and dropped for up to
`LINGER_SECONDS` before it closes: closing a socket with unread input makes the kernel
send RST, which can destroy the answer before the client reads it (Go's net/http waits
the same way before closing after an error answer).
"""

import asyncio
import logging
import weakref
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from http import HTTPStatus
from typing import Any

import httptools
import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from app.core.config import get_settings

logger = logging.getLogger("app.http")

MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100
LINGER_SECONDS = 0.5
# The request line's method, spaces, "HTTP/1.1" and CRLF, and the head's final CRLF;
# each header line adds ": " and CRLF to its name and value.
_REQUEST_LINE_BYTES = 16
_HEADER_LINE_BYTES = 4


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """The HTTP_* settings this protocol enforces (defaults: Settings)."""

    max_connections: int
    header_timeout: float
    body_timeout: float
    body_total_timeout: float

    @property
    def sweep_interval(self) -> float:
        return min(1.0, self.header_timeout / 4, self.body_timeout / 4)


@lru_cache
def _limits() -> HttpLimits:
    """From Settings (every worker process reads the same environment)."""
    settings = get_settings()
    return HttpLimits(
        max_connections=settings.HTTP_MAX_CONNECTIONS,
        header_timeout=settings.HTTP_HEADER_TIMEOUT,
        body_timeout=settings.HTTP_BODY_TIMEOUT,
        body_total_timeout=settings.HTTP_BODY_TOTAL_TIMEOUT,
    )


def _tail(status: int, code: str, detail: str, *headers: bytes) -> bytes:
    """Everything of a refusal after the status line and uvicorn's default headers."""
    body = orjson.dumps(
        {
            "type": "about:blank",
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": detail,
            "code": code,
        }
    )
    head = [
        b"content-type: application/problem+json",
        b"content-length: %d" % len(body),
        b"connection: close",
        *headers,
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


_REFUSALS: dict[str, tuple[int, bytes]] = {
    "headers_too_large": (
        431,
        _tail(
            431,
            "headers_too_large",
            f"The request line and headers must fit in {MAX_HEAD_BYTES} bytes "
            f"and {MAX_HEADERS} header lines",
        ),
    ),
    "header_timeout": (408, _tail(408, "header_timeout", "The request head came too slowly")),
    "body_timeout": (408, _tail(408, "body_timeout", "The request body came too slowly")),
    "server_busy": (
        503,
        _tail(503, "server_busy", "Too many open connections; retry later", b"retry-after: 1"),
    ),
}


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a refused request."""


class _DiscardingParser:
    """Stands in for the parser once a request is refused: nothing more is parsed."""

    def feed_data(self, data: bytes) -> None:
        pass


class _Lingering(asyncio.Protocol):
    """A refused connection, answered and half-closed: what the client still sends is
    dropped until it closes or LINGER_SECONDS pass."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = loop.call_later(LINGER_SECONDS, transport.close)

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> None:
        return None  # the transport then closes itself

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002
        self._timer.cancel()


def _refuse(
    transport: asyncio.Transport,
    loop: asyncio.AbstractEventLoop,
    server_state: ServerState,
    refusal: str,
) -> None:
    """Answer `refusal`, half-close, linger, close; the transport's protocol is replaced."""
    if transport.is_closing():
        return
    status, tail = _REFUSALS[refusal]
    head = [STATUS_LINE[status]]
    for name, value in server_state.default_headers:  # date, server
        head += [name, b": ", value, b"\r\n"]
    transport.set_protocol(_Lingering(transport, loop))
    transport.write(b"".join(head) + tail)
    if transport.can_write_eof():
        transport.write_eof()
    transport.resume_reading()  # in case flow control had paused it


class _Sweeper:
    """One per server: checks every open connection's deadlines every `interval` s, and
    logs what was refused since the last sweep in one line (one line per refusal would
    let a flood of bad connections flood the log as well)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, server_state: ServerState, interval: float
    ) -> None:
        self._loop = loop
        self._connections = server_state.connections
        self._interval = interval
        self.refused: Counter[str] = Counter()
        loop.call_later(interval, self._sweep)

    def _sweep(self) -> None:
        try:
            now = self._loop.time()
            for connection in list(self._connections):  # a refusal leaves the set
                if isinstance(connection, GuardedHttpToolsProtocol):
                    connection.check_deadlines(now)
            if self.refused:
                logger.warning("refused connections", extra={"refused": dict(self.refused)})
                self.refused.clear()
        finally:
            self._loop.call_later(self._interval, self._sweep)


_sweepers: "weakref.WeakKeyDictionary[ServerState, _Sweeper]" = weakref.WeakKeyDictionary()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's HttpToolsProtocol with a head limit, deadlines and a connection limit
    (see the module docstring). The hot path gains a few attribute updates per request;
    the rest runs only when a limit is hit."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._limits = _limits()
        self._awaiting_head = True  # between requests, or inside a head
        self._head_bytes = 0  # bytes received so far of a head still incomplete
        self._head_size = 0  # the current head's header lines, as on_header saw them
        self._head_since = 0.0  # when the wait for the current head began
        self._body_since = 0.0  # when the current body began; 0: none is arriving
        self._body_last = 0.0  # when some of it last came
        self._pending_refusal: str | None = None  # to send once the responses in flight end
        self._sweeper: _Sweeper  # set by connection_made

    # Connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sweeper = _sweepers.get(self.server_state)
        if sweeper is None:
            sweeper = _sweepers[self.server_state] = _Sweeper(
                self.loop, self.server_state, self._limits.sweep_interval
            )
        self._sweeper = sweeper
        if len(self.connections) >= self._limits.max_connections:
            sweeper.refused["server_busy"] += 1
            _refuse(transport, self.loop, self.server_state, "server_busy")
            return
        super().connection_made(transport)
        self._head_since = self.loop.time()

    def data_received(self, data: bytes) -> None:
        """uvicorn's, plus the head's byte count, the body's last arrival, and the
        parser callbacks' refusals."""
        self._unset_keepalive_if_required()
        if self._awaiting_head:
            self._head_bytes += len(data)
        elif self._body_since:
            self._body_last = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if isinstance(self.parser, _DiscardingParser):
                return  # refused from a callback
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        # A single line larger than the limit never reaches on_header: the parser
        # buffers it, so the raw bytes of the incomplete head are counted as well.
        if self._awaiting_head and self._head_bytes > MAX_HEAD_BYTES:
            self._refuse("headers_too_large")

    # Parser callbacks ----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + _HEADER_LINE_BYTES
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        size = self._head_size + len(self.url) + _REQUEST_LINE_BYTES
        if size > MAX_HEAD_BYTES or len(self.headers) > MAX_HEADERS:
            self._refuse("headers_too_large")
            raise _Refused
        self._awaiting_head = False
        self._head_bytes = self._head_size = 0
        self._body_since = self._body_last = self.loop.time()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._awaiting_head = True
        self._body_since = 0.0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._head_since = self.loop.time()
        if self._pending_refusal is not None and not self.pipeline:
            self.server_state.total_requests += 1
            self._refuse(self._pending_refusal)
            return
        super().on_response_complete()

    # Limits --------------------------------------------------------------------------

    def check_deadlines(self, now: float) -> None:
        """Called by the sweeper: close the connection if its client is late."""
        cycle = self.cycle
        if self._awaiting_head:
            waiting = cycle is None or cycle.response_complete  # no response in flight
            if waiting and now - self._head_since > self._limits.header_timeout:
                if self._head_bytes:
                    self._refuse("header_timeout")
                else:
                    self.transport.close()
        elif self._body_since:
            if self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue):
                self._body_last = now  # uvicorn holds the body back, not the client
            elif (
                now - self._body_last > self._limits.body_timeout
                or now - self._body_since > self._limits.body_total_timeout
            ):
                if self.pipeline or (cycle is not None and cycle.response_started):
                    self.transport.close()  # a 408 now would garble a response
                else:
                    self._refuse("body_timeout")

    def _refuse(self, refusal: str) -> None:
        """Stop parsing, answer `refusal` and close: at once, or once the requests
        before it (pipelined) have been answered."""
        self._awaiting_head = False
        self._body_since = 0.0
        self.parser = _DiscardingParser()  # type: ignore[assignment]
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if not cycle.more_body:  # a whole request is still being answered
                self._pending_refusal = refusal
                return
            cycle.disconnected = True  # its own body is late: the app hears it is gone
            cycle.message_event.set()
        self._sweeper.refused[refusal] += 1
        # What connection_lost would do: the transport now belongs to _Lingering.
        self.connections.discard(self)
        self._unset_keepalive_if_required()
        self.flow.resume_writing()
        _refuse(self.transport, self.loop, self.server_state, refusal)
