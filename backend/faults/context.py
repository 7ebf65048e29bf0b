"""What every scenario gets: the cluster, the API, the settings it runs with, the report."""

from dataclasses import dataclass

import asyncpg
import httpx

from faults.cluster import Cluster
from faults.report import Report
from faults.server import ApiServer


@dataclass
class Bounds:
    """The settings the API runs with, and the margins the checks allow on top."""

    statement_timeout: float = 2.0  # DB_STATEMENT_TIMEOUT
    request_timeout: float = 10.0  # REQUEST_TIMEOUT
    header_timeout: float = 3.0  # HTTP_HEADER_TIMEOUT (app.serve)
    body_timeout: float = 3.0  # HTTP_BODY_TIMEOUT (app.serve): longest silence in a body
    body_total_timeout: float = 4.0  # HTTP_BODY_TOTAL_TIMEOUT (app.serve): a whole body
    max_connections: int = 1000  # HTTP_MAX_CONNECTIONS (app.serve): above the suite's own
    margin: float = 1.0  # on top of a timeout, for the check's own polling and scheduling
    recovery: float = 5.0  # first 2xx after PostgreSQL or the API is back
    disconnect: float = 1.0  # a hung-up client's query gone from pg_stat_activity
    answer: float = 1.0  # an ordinary request while a fault is on

    @property
    def request(self) -> float:
        """Longest any single request may take before it counts as a hang."""
        return self.request_timeout + 2.0


@dataclass
class Context:
    cluster: Cluster
    api: ApiServer
    bounds: Bounds
    report: Report

    def client(self, timeout: float | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.api.base_url, timeout=timeout or self.bounds.request)

    async def db(self) -> asyncpg.Connection:
        """A connection of the suite's own, outside the API's pool."""
        return await asyncpg.connect(
            self.cluster.dsn,
            statement_cache_size=0,
            server_settings={"application_name": "faults"},
        )
