"""A page of tasks costs a fixed number of statements, whatever its size."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from tests.conftest import UserHandle, is_postgres
from tests.tasks.conftest import TaskFactory
from tests.tasks.helpers import TASKS


@contextmanager
def statements(app) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ARG001
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            seen.append(statement)

    def record_lean(query) -> None:  # statements run on the asyncpg pool (app/core/pg.py)
        seen.append(query.query)

    engine = app.state.engine.sync_engine
    lean = app.state.database.pg
    event.listen(engine, "before_cursor_execute", record)
    if lean is not None:
        lean.add_query_logger(record_lean)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
        if lean is not None:
            lean.remove_query_logger(record_lean)


class TestListQueryCount:
    async def test_page_size_does_not_change_the_statement_count(
        self, app, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        for i in range(50):
            await task_factory(title=f"t{i}", tags=[f"tag{i % 7}", "all"])
        counts = {}
        for limit in (1, 50):
            with statements(app) as seen:
                response = await client.get(
                    TASKS,
                    params={"limit": limit, "tags": "all", "search": "t"},
                    headers=user.headers,
                )
            assert response.status_code == 200
            assert len(response.json()["items"]) == limit
            counts[limit] = len(seen)
        assert counts[1] == counts[50]
        # the caller's session check, then the page with its tags and total
        assert counts[50] == 2

    async def test_offset_past_the_end_costs_one_more(
        self, app, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        await task_factory()
        with statements(app) as seen:
            response = await client.get(TASKS, params={"offset": 5}, headers=user.headers)
        assert response.json()["total"] == 1
        # PostgreSQL renders page and total in one statement even past the end; other
        # databases need the count on its own then.
        assert len(seen) == (2 if is_postgres() else 3)
