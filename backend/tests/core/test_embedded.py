"""The embedded PostgreSQL server, with real processes: no mocks.

Self-contained (runs with --noconftest): each test has its own data dir under tmp_path
and its teardown stops that data dir's server, whatever the test left behind.
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from app.core import embedded

BACKEND = Path(__file__).resolve().parents[2]

# A user process: attaches, prints the URL, detaches when a line arrives on stdin.
USER = """
import sys
from pathlib import Path
from app.core import embedded
db = embedded.attach(Path(sys.argv[1]))
print(db.url, flush=True)
sys.stdin.readline()
db.release()
"""


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    yield path
    embedded.stop(path)  # only ever the server of this test's own data dir


def query(url: str, sql: str) -> object:
    """The first value of the last statement's result (statements separated by ;)."""

    async def run() -> object:
        conn = await asyncpg.connect(url.replace("+asyncpg", ""), timeout=5)
        try:
            *before, last = sql.split(";")
            for statement in before:
                await conn.execute(statement)
            return await conn.fetchval(last)
        finally:
            await conn.close()

    return asyncio.run(run())


def assert_refused(url: str) -> None:
    with pytest.raises(ConnectionRefusedError):
        query(url, "SELECT 1")


def spawn_user(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", USER, str(data_dir)],
        cwd=BACKEND,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def detach(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.wait(timeout=30) == 0


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])


def test_first_attach_initialises_and_serves(data_dir: Path) -> None:
    db = embedded.attach(data_dir)
    assert db.url == f"postgresql+asyncpg://postgres@127.0.0.1:{db.port}/todo"
    assert query(db.url, "SHOW server_encoding") == "UTF8"
    assert query(db.url, "SELECT datcollate FROM pg_database WHERE datname = 'todo'") == "C"
    assert query(db.url, "SHOW listen_addresses") == "127.0.0.1"
    assert query(db.url, "SHOW unix_socket_directories") == ""
    installed = (
        "CREATE EXTENSION pg_trgm; CREATE EXTENSION btree_gin; SELECT count(*) FROM pg_extension"
    )
    assert query(db.url, installed) == 3  # with plpgsql
    assert (data_dir / "postgres.port").read_text().strip() == str(db.port)
    db.release()
    db.release()  # idempotent
    assert_refused(db.url)


def test_data_survives_release_and_attach(data_dir: Path) -> None:
    db = embedded.attach(data_dir)
    query(db.url, "CREATE TABLE note (body text); INSERT INTO note VALUES ('yesterday'); SELECT 1")
    db.release()
    assert_refused(db.url)

    again = embedded.attach(data_dir)
    assert again.url == db.url  # the same port, from postgres.port
    assert query(again.url, "SELECT body FROM note") == "yesterday"
    again.release()


def test_processes_share_one_server_until_the_last_detaches(data_dir: Path) -> None:
    # Started at the same moment on an empty dir: one initdb, one server.
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", USER, str(data_dir)],
            cwd=BACKEND,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    urls = {proc.stdout.readline().strip() for proc in procs if proc.stdout is not None}
    assert len(urls) == 1
    url = urls.pop()
    started = query(url, "SELECT pg_postmaster_start_time()")

    detach(procs[0])
    detach(procs[1])
    assert query(url, "SELECT pg_postmaster_start_time()") == started
    detach(procs[2])
    assert_refused(url)


def test_a_killed_user_does_not_block(data_dir: Path) -> None:
    proc, url = spawn_user(data_dir)
    proc.kill()  # SIGKILL: no release; the kernel drops its lock
    proc.wait(timeout=10)
    assert query(url, "SELECT 1") == 1  # every user crashed: the server keeps running

    db = embedded.attach(data_dir)
    assert db.url == url
    db.release()  # now the only user: stops it
    assert_refused(url)


def test_a_killed_postmaster_restarts(data_dir: Path) -> None:
    db = embedded.attach(data_dir)
    query(db.url, "CREATE TABLE note (body text); INSERT INTO note VALUES ('committed'); SELECT 1")
    pid = postmaster_pid(data_dir)
    # Ours for sure: its working directory is this test's cluster.
    assert Path(os.readlink(f"/proc/{pid}/cwd")) == (data_dir / "postgres").resolve()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}/cwd") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (data_dir / "postgres" / "postmaster.pid").exists()  # stale

    again = embedded.attach(data_dir)  # the first attachment still holds its lock
    assert query(again.url, "SELECT body FROM note") == "committed"  # crash recovery
    assert postmaster_pid(data_dir) != pid
    db.release()
    again.release()
    assert_refused(again.url)


def test_a_stale_pid_file_naming_a_live_process_is_removed(data_dir: Path) -> None:
    embedded.attach(data_dir).release()
    # PostgreSQL itself would refuse to start: the PID is alive (it is this test's).
    (data_dir / "postgres" / "postmaster.pid").write_text(f"{os.getpid()}\n{data_dir}\n")

    db = embedded.attach(data_dir)
    assert query(db.url, "SELECT 1") == 1
    db.release()


def test_a_taken_port_is_replaced(data_dir: Path) -> None:
    db = embedded.attach(data_dir)
    db.release()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", db.port))
        squatter.listen()

        moved = embedded.attach(data_dir)
        assert moved.port != db.port
        assert (data_dir / "postgres.port").read_text().strip() == str(moved.port)
        assert query(moved.url, "SELECT 1") == 1
        moved.release()


def test_a_server_that_cannot_start_names_its_log(data_dir: Path) -> None:
    embedded.attach(data_dir).release()
    with (data_dir / "postgres" / "postgresql.conf").open("a") as conf:
        conf.write("shared_buffers = 'plenty'\n")

    with pytest.raises(RuntimeError, match=r"postgres\.log"):
        embedded.attach(data_dir)
    assert "shared_buffers" in (data_dir / "postgres.log").read_text()


def test_cli_prints_the_url_and_leaves_the_server_running(data_dir: Path) -> None:
    def cli(*args: str) -> str:
        command = [sys.executable, "-m", "app.core.embedded", *args, str(data_dir)]
        return subprocess.run(
            command, cwd=BACKEND, capture_output=True, text=True, check=True
        ).stdout

    url = cli("url").strip()
    assert query(url, "SELECT current_database()") == "todo"
    assert cli("stop") == "stopped\n"
    assert_refused(url)
    assert cli("stop") == "not running\n"
