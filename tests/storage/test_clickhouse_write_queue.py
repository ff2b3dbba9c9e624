"""How long a leader of the ClickHouse store's group commit waits for more writes
(``group.WriteQueue``): as many as the last group held, never for a lone writer, never past a
quarter of the last group's time. (The groups themselves, stored through the engine, are tested
in test_clickhouse_store.py.)"""

from __future__ import annotations

import asyncio

import pytest

from tests.storage.test_contract import make_event, new_id, scope_a  # noqa: F401 - fixture
from tracehive.model.scope import Scope
from tracehive.storage.clickhouse.group import MAX_GROUP_EVENTS, MAX_WAIT, PendingWrite, WriteQueue

pytestmark = pytest.mark.anyio


def a_write(scope: Scope, events: int = 1) -> PendingWrite:
    session = new_id()
    return PendingWrite(scope, [make_event(session) for _ in range(events)])


async def test_a_leader_waits_for_as_many_writes_as_the_last_group_held(scope_a: Scope) -> None:
    queue = WriteQueue(max_wait=60.0)  # (a window no stall of a busy machine closes)
    queue.finished(3, 100.0)
    queue.append(a_write(scope_a))
    gathering = asyncio.create_task(queue.gather())
    await asyncio.sleep(0)
    assert not gathering.done()
    queue.append(a_write(scope_a))
    await asyncio.sleep(0)
    assert not gathering.done()
    queue.append(a_write(scope_a))
    await asyncio.wait_for(gathering, 5)
    assert len(queue.take()) == 3 and len(queue) == 0


def test_a_lone_writer_never_waits(scope_a: Scope) -> None:
    async def check() -> None:
        queue = WriteQueue()
        queue.append(a_write(scope_a))
        for last in (0, 1):  # the first group, then after a group of one
            queue.finished(last, 10.0)
            with pytest.raises(StopIteration):  # gather() returns without suspending once
                queue.gather().send(None)

    asyncio.run(check())


def test_a_full_group_never_waits(scope_a: Scope) -> None:
    async def check() -> None:
        queue = WriteQueue()
        queue.finished(8, 10.0)
        queue.append(a_write(scope_a, MAX_GROUP_EVENTS))
        with pytest.raises(StopIteration):
            queue.gather().send(None)

    asyncio.run(check())


@pytest.mark.parametrize("last_seconds", [0.008, 10.0])
async def test_a_leader_stops_waiting_when_no_more_writes_come(scope_a: Scope, last_seconds: float) -> None:
    queue = WriteQueue()
    queue.finished(8, last_seconds)
    queue.append(a_write(scope_a))
    loop = asyncio.get_running_loop()
    began = loop.time()
    await asyncio.wait_for(queue.gather(), 5)
    waited = loop.time() - began
    assert waited < 1.0
    # A quarter of the last group's time (2 ms), or MAX_WAIT: the timer fires no earlier.
    assert waited >= min(MAX_WAIT, last_seconds / 4) * 0.9
    assert len(queue.take()) == 1
