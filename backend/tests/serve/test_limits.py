"""The served process's own limits (app/core/protocol.py): 431 for heads over 16 KiB or
100 header lines, deadlines for heads and bodies, and 503 at once beyond the connection
limit."""

import json
import time

import pytest

from app.core.protocol import MAX_HEAD_BYTES, MAX_HEADERS
from tests.serve.conftest import EARLY, FAST_LIMITS, LATE, Response, Served, ServeFactory, get

HEADER_TIMEOUT = float(FAST_LIMITS["HTTP_HEADER_TIMEOUT"])
BODY_TIMEOUT = float(FAST_LIMITS["HTTP_BODY_TIMEOUT"])
BODY_TOTAL_TIMEOUT = float(FAST_LIMITS["HTTP_BODY_TOTAL_TIMEOUT"])
KEEPALIVE_TIMEOUT = float(FAST_LIMITS["HTTP_KEEPALIVE_TIMEOUT"])


def head_of(size: int) -> bytes:
    """A GET /health head of exactly `size` bytes (request line and CRLFs included)."""
    start = b"GET /health HTTP/1.1\r\nHost: test\r\nX-Pad: "
    end = b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


def assert_refusal(response: Response, status: int, code: str) -> None:
    assert response.status == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["connection"] == "close"
    body = response.json()
    assert body["type"] == "about:blank"
    assert body["status"] == status
    assert body["code"] == code
    assert body["title"]
    assert body["detail"]


def post_head(length: int) -> bytes:
    return (
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: test\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


class TestHeadLimit:
    def test_a_17_kib_header_is_431_and_closed(self, served: Served) -> None:
        with served.connect() as conn:
            conn.send(get("/health", "X-Big: " + "a" * 17 * 1024))
            response = conn.response()
            assert_refusal(response, 431, "headers_too_large")
            assert response.json()["title"] == "Request Header Fields Too Large"
            conn.closed_after()

    def test_a_head_just_over_16_kib_is_431(self, served: Served) -> None:
        with served.connect() as conn:
            conn.send(head_of(MAX_HEAD_BYTES + 32))
            assert_refusal(conn.response(), 431, "headers_too_large")

    def test_a_head_just_under_16_kib_is_served(self, served: Served) -> None:
        with served.connect() as conn:
            conn.send(head_of(MAX_HEAD_BYTES - 32))
            assert conn.response().status == 200

    def test_too_many_header_lines_is_431(self, served: Served) -> None:
        headers = [f"X-H{i}: 1" for i in range(MAX_HEADERS)]  # with Host: one too many
        with served.connect() as conn:
            conn.send(get("/health", *headers))
            assert_refusal(conn.response(), 431, "headers_too_large")
            conn.closed_after()

    def test_the_most_header_lines_are_served(self, served: Served) -> None:
        headers = [f"X-H{i}: 1" for i in range(MAX_HEADERS - 1)]
        with served.connect() as conn:
            conn.send(get("/health", *headers))
            assert conn.response().status == 200

    def test_a_header_line_that_never_ends_is_refused_before_it_ends(self, served: Served) -> None:
        with served.connect() as conn:
            conn.send(b"GET /health HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 17 * 1024)
            assert_refusal(conn.response(), 431, "headers_too_large")
            conn.send(b"a" * 1024)  # still read (and dropped) for a moment, then closed
            assert conn.closed_after() < 1.0 + LATE

    def test_an_oversized_pipelined_head_is_answered_after_the_request_before_it(
        self, served: Served
    ) -> None:
        with served.connect() as conn:
            conn.send(get() + head_of(MAX_HEAD_BYTES + 1024))
            assert conn.response().status == 200
            assert_refusal(conn.response(), 431, "headers_too_large")
            conn.closed_after()

    def test_after_a_connection_close_request_nothing_more_is_answered(
        self, served: Served
    ) -> None:
        with served.connect() as conn:
            conn.send(get(close=True) + head_of(MAX_HEAD_BYTES + 1024))
            assert conn.response().status == 200
            conn.closed_after()


class TestOtherRequests:
    def test_a_malformed_request_is_still_400(self, served: Served) -> None:
        with served.connect() as conn:
            conn.send(b"GET /health HTTP/1.1\r\nHost: test\r\nBad Header\r\n\r\n")
            assert conn.response().status == 400
            conn.closed_after()

    def test_an_upgrade_request_is_answered_as_plain_http(self, served: Served) -> None:
        """The served process has no WebSocket protocol (the app has no such route)."""
        with served.connect() as conn:
            conn.send(get("/health", "Connection: Upgrade", "Upgrade: websocket"))
            assert conn.response().status == 200

    def test_a_body_sent_after_100_continue_is_served(self, served: Served) -> None:
        body = b'{"email": "nobody@example.com", "password": "wrong password"}'
        with served.connect() as conn:
            conn.send(post_head(len(body))[:-2] + b"Expect: 100-continue\r\n\r\n")
            assert conn.sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
            conn.send(body)
            assert conn.response().status == 401


class TestHeadDeadline:
    def test_a_silent_connection_is_closed_after_the_header_timeout(self, served: Served) -> None:
        with served.connect() as conn:
            assert HEADER_TIMEOUT - EARLY <= conn.closed_after() <= HEADER_TIMEOUT + LATE

    def test_a_dribbled_head_is_408_after_the_header_timeout(self, served: Served) -> None:
        with served.connect() as conn:
            conn.send(b"GET /health HTTP/1.1\r\n")
            conn.sock.settimeout(0.2)
            answer = b""
            # One byte of a header every 0.2 s: never silent long, never complete.
            while not answer and time.monotonic() - conn.opened < HEADER_TIMEOUT + 2 * LATE:
                try:
                    conn.send(b"X")
                    answer = conn.sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:  # closed before the 408 was read
                    break
            elapsed = time.monotonic() - conn.opened
            assert answer.startswith(b"HTTP/1.1 408 "), answer
            assert b'"code":"header_timeout"' in answer
            assert HEADER_TIMEOUT - EARLY <= elapsed <= HEADER_TIMEOUT + LATE

    def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(
        self, served: Served
    ) -> None:
        with served.connect() as conn:
            conn.send(get())
            assert conn.response().status == 200
            answered = time.monotonic()
            assert conn.closed_after()
            assert (
                KEEPALIVE_TIMEOUT - EARLY <= time.monotonic() - answered <= KEEPALIVE_TIMEOUT + LATE
            )

    def test_the_next_head_on_a_keep_alive_connection_has_the_header_timeout(
        self, served: Served
    ) -> None:
        with served.connect() as conn:
            conn.send(get())
            assert conn.response().status == 200
            answered = time.monotonic()
            conn.send(b"GET /health HTTP/1.1\r\n")  # before the keep-alive timeout
            answer = conn.sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 408 "), answer
            assert HEADER_TIMEOUT - EARLY <= time.monotonic() - answered <= HEADER_TIMEOUT + LATE

    def test_keep_alive_requests_within_the_deadlines_are_served(self, served: Served) -> None:
        with served.connect() as conn:
            for _ in range(4):  # 4 x 0.6 s: longer than either timeout, in all
                conn.send(get())
                assert conn.response().status == 200
                time.sleep(0.6)


class TestBodyDeadline:
    def test_a_body_that_stops_is_408_after_the_body_timeout(self, served: Served) -> None:
        with served.connect() as conn:
            conn.send(post_head(100) + b'{"email": ')
            sent = time.monotonic()
            response = conn.response()
            elapsed = time.monotonic() - sent
            assert_refusal(response, 408, "body_timeout")
            assert BODY_TIMEOUT - EARLY <= elapsed <= BODY_TIMEOUT + LATE
            conn.closed_after()
        # The app's receive() got http.disconnect: its request ended, logged as 499.
        time.sleep(0.2)
        assert any(
            record.get("route") == "/api/v1/auth/login" and record.get("status") == 499
            for record in served.log_records()
        ), served.output()

    def test_a_body_that_dribbles_is_closed_after_the_total_body_timeout(
        self, served: Served
    ) -> None:
        with served.connect() as conn:
            conn.send(post_head(100))
            started = time.monotonic()
            conn.sock.settimeout(BODY_TIMEOUT / 2)
            answer = b""
            while not answer and time.monotonic() - started < BODY_TOTAL_TIMEOUT + 2 * LATE:
                try:
                    conn.send(b" ")  # JSON whitespace, never silent for a whole timeout
                    answer = conn.sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
            elapsed = time.monotonic() - started
            assert answer.startswith(b"HTTP/1.1 408 "), answer
            assert BODY_TOTAL_TIMEOUT - EARLY <= elapsed <= BODY_TOTAL_TIMEOUT + LATE

    def test_a_body_the_app_does_not_read_has_the_deadline_too(self, served: Served) -> None:
        """GET /health answers without reading the body; the rest of it, dribbled in,
        holds the connection no longer than the total body timeout."""
        with served.connect() as conn:
            conn.send(get("/health", "Content-Length: 100") + b"0123456789")
            sent = time.monotonic()
            assert conn.response().status == 200
            conn.sock.settimeout(BODY_TIMEOUT / 2)
            rest = b"x"
            while rest and time.monotonic() - sent < BODY_TOTAL_TIMEOUT + 2 * LATE:
                try:
                    conn.send(b"x")
                    rest = conn.sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
            assert rest == b""
            elapsed = time.monotonic() - sent
            assert BODY_TOTAL_TIMEOUT - EARLY <= elapsed <= BODY_TOTAL_TIMEOUT + LATE

    def test_a_body_sent_in_pieces_in_time_is_served(self, served: Served) -> None:
        body = json.dumps({"email": "nobody@example.com", "password": "wrong password"})
        with served.connect() as conn:
            conn.send(post_head(len(body)))
            for start in range(0, len(body), 10):
                time.sleep(BODY_TIMEOUT / 4)
                conn.send(body[start : start + 10].encode())
            assert conn.response().status == 401


@pytest.fixture(scope="module")
def limited(serve: ServeFactory) -> Served:
    return serve(HTTP_MAX_CONNECTIONS="5")


class TestConnectionLimit:
    def test_beyond_the_limit_a_connection_is_503_at_once(self, limited: Served) -> None:
        held = [limited.connect() for _ in range(5)]
        try:
            time.sleep(0.2)
            with limited.connect() as conn:
                response = conn.response()  # without sending anything
                assert time.monotonic() - conn.opened < 0.5
                assert_refusal(response, 503, "server_busy")
                assert response.headers["retry-after"] == "1"
                conn.closed_after()
            # The held ones are still served.
            held[0].send(get())
            assert held[0].response().status == 200
        finally:
            for conn in held:
                conn.close()
        time.sleep(0.2)
        with limited.connect() as conn:  # room again
            conn.send(get(close=True))
            assert conn.response().status == 200

    def test_refusals_are_logged_once_per_sweep(self, limited: Served) -> None:
        time.sleep(1.2)  # a sweep (every 1 s with the default timeouts) has run
        records = [r for r in limited.log_records() if r.get("message") == "refused connections"]
        assert records, limited.output()
        assert records[0]["refused"] == {"server_busy": 1}


def test_a_silent_connection_counts_towards_the_limit(serve: ServeFactory) -> None:
    """Silent connections are what a connection flood is made of: they are refused
    once they fill the limit, and closed at the header timeout."""
    server = serve(HTTP_MAX_CONNECTIONS="2", HTTP_HEADER_TIMEOUT="1")
    held = [server.connect() for _ in range(2)]
    try:
        time.sleep(0.1)
        with server.connect() as conn:
            assert conn.response().status == 503
        for conn in held:
            assert conn.closed_after() <= 1.0 + LATE
    finally:
        for conn in held:
            conn.close()
    with server.connect() as conn:
        conn.send(get(close=True))
        assert conn.response().status == 200


def test_no_error_was_logged(served: Served) -> None:
    """After all of the above, the process still serves and logged no error."""
    with served.connect() as conn:
        conn.send(get(close=True))
        assert conn.response().status == 200
    errors = [r for r in served.log_records() if r["level"] in ("ERROR", "CRITICAL")]
    assert not errors, errors
