"""A PgBouncer of the caller's own in transaction mode (Debian's `pgbouncer`, installed
with apt-get when missing and running as root), in front of one PostgreSQL on
loopback: for `make replicas` and the bench's pooler points. Stopped by its PID."""

import os
import shutil
import socket
import subprocess
import time
from contextlib import suppress
from pathlib import Path

from faults.server import HOST, free_port


def binary(name: str, package: str) -> str:
    """The path of `name`, installing Debian's `package` (as root) when it is missing."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit(f"{name} is not installed (apt-get install {package})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-qq", package]
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=True)
        subprocess.run(cmd, env=env, capture_output=True, check=True)
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin") or name


class PgBouncer:
    def __init__(self, root: Path, port: int, host: str = HOST, user: str = "postgres") -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        (root / "userlist.txt").write_text(f'"{user}" ""\n')
        (root / "pgbouncer.ini").write_text(
            f"[databases]\n* = host={host} port={port}\n\n[pgbouncer]\n"
            f"listen_addr = {HOST}\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {root}/userlist.txt\npool_mode = transaction\n"
            "max_client_conn = 500\ndefault_pool_size = 20\n"
            "ignore_startup_parameters = extra_float_digits\n"
        )

    def start(self) -> None:
        pgbouncer = binary("pgbouncer", "pgbouncer")
        args = [pgbouncer, "-q", str(self.root / "pgbouncer.ini")]
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            shutil.chown(self.root, "postgres")
            for child in self.root.iterdir():
                shutil.chown(child, "postgres")
            args[1:1] = ["-u", "postgres"]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        wait_port(self.port, what="pgbouncer", process=self.process)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


def wait_port(port: int, what: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(100):
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        with suppress(OSError), socket.create_connection((HOST, port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")
