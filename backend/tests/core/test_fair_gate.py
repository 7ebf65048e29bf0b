"""FairGate: the admission order in front of the lean PostgreSQL pool (app/core/pg.py)."""

import asyncio

import pytest

from app.core.db import FairGate


async def _hold(gate: FairGate, name: str, order: list[str], release: asyncio.Event) -> None:
    await gate.acquire()
    order.append(name)
    await release.wait()
    gate.release()


async def test_slots_go_to_waiters_in_arrival_order() -> None:
    gate = FairGate(1)
    order: list[str] = []
    releases = {name: asyncio.Event() for name in "abcd"}
    tasks = []
    for name in "abcd":
        tasks.append(asyncio.create_task(_hold(gate, name, order, releases[name])))
        await asyncio.sleep(0)  # arrive one after the other
    for name in "abcd":
        await asyncio.sleep(0)
        assert order[-1] == name  # only the holder got in
        releases[name].set()
        # A newcomer arriving just as the slot is freed must queue behind the waiters.
        if name == "a":
            late = asyncio.create_task(_hold(gate, "late", order, asyncio.Event()))
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == ["a", "b", "c", "d", "late"]
    late.cancel()


async def test_a_waiter_that_gives_up_leaves_its_place_and_no_slot_behind() -> None:
    gate = FairGate(1)
    await gate.acquire()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await gate.acquire()
    gate.release()
    await asyncio.wait_for(gate.acquire(), 1)  # the one slot is free again
    gate.release()


async def test_a_slot_handed_to_a_cancelled_waiter_is_passed_on() -> None:
    gate = FairGate(1)
    await gate.acquire()
    first = asyncio.create_task(gate.acquire())
    second = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    gate.release()  # hands the slot to `first`...
    first.cancel()  # ...which gives up before it runs
    await asyncio.wait_for(second, 1)  # so `second` gets it
    assert first.cancelled()
    gate.release()
    await asyncio.wait_for(gate.acquire(), 1)


async def test_up_to_size_enter_at_once() -> None:
    gate = FairGate(3)
    for _ in range(3):
        await asyncio.wait_for(gate.acquire(), 1)
    blocked = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0.01)
    assert not blocked.done()
    gate.release()
    await asyncio.wait_for(blocked, 1)


async def test_a_release_between_a_cancellation_and_its_clean_up() -> None:
    """A waiter cancelled (its client hung up) and a release() before the cancelled task
    runs again: the release skips the cancelled waiter, and the task's clean-up must
    not fail on it (it raised ValueError, a 500, under load behind nginx)."""
    gate = FairGate(1)
    await gate.acquire()
    first = asyncio.create_task(gate.acquire())
    second = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    first.cancel()  # its waiter future is cancelled at once...
    gate.release()  # ...so this hands the slot to `second`, dropping `first`'s waiter
    await asyncio.wait_for(second, 1)
    with pytest.raises(asyncio.CancelledError):
        await first
    gate.release()
    await asyncio.wait_for(gate.acquire(), 1)  # the one slot is whole
