"""Periodic clean-up: the change log of sync past SYNC_RETENTION_DAYS, the trash past
TRASH_RETENTION_DAYS.

Every server process runs it every MAINTENANCE_INTERVAL seconds (spread by a random
offset, so replicas don't all run at once); the DELETEs are idempotent, so several
replicas doing it is only redundant work. With MAINTENANCE_INTERVAL=0 nothing runs in
the app, and a scheduler (cron, a Kubernetes CronJob) runs the same once:

    python -m app.maintenance          # DATABASE_DIRECT_URL, else DATABASE_URL
"""

import asyncio
import contextlib
import logging
import random
import sys

from app.core.config import Settings, get_settings
from app.core.db import Database
from app.sync import service as sync
from app.tasks import trash

logger = logging.getLogger(__name__)


async def run_once(db: Database, settings: Settings) -> int:
    """Both purges; how many rows went (change log rows and trashed tasks)."""
    async with db.connection() as conn:
        purged = await sync.purge(conn, settings.SYNC_RETENTION_DAYS)
        trashed = await trash.purge(conn, settings.TRASH_RETENTION_DAYS)
    if purged or trashed:
        logger.info(
            "maintenance", extra={"sync_changes_purged": purged, "trashed_tasks_purged": trashed}
        )
    return purged + trashed


class Maintenance:
    """The in-app schedule of run_once (started and stopped by the app's lifespan)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db, self._settings = db, settings
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._settings.MAINTENANCE_INTERVAL > 0:
            self._task = asyncio.create_task(self._loop(), name="maintenance")

    async def _loop(self) -> None:
        interval = self._settings.MAINTENANCE_INTERVAL
        await asyncio.sleep(interval * random.uniform(0.5, 1.0))
        while True:
            try:
                await run_once(self._db, self._settings)
            except Exception:  # the next run tries again; a crash must not stop serving
                logger.exception("maintenance failed")
            await asyncio.sleep(interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


async def _main() -> None:  # pragma: no cover - run by operators, tested via run_once
    settings = get_settings()
    db = Database(settings, settings.DATABASE_DIRECT_URL or settings.DATABASE_URL or None)
    try:
        purged = await run_once(db, settings)
    finally:
        await db.close()
    sys.stdout.write(f"purged {purged} rows (sync change log, trashed tasks)\n")


if __name__ == "__main__":  # pragma: no cover
    asyncio.run(_main())
