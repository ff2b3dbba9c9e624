"""Heavy reads (searches, charts, session lists, export pages, trees, schema) under two bounds
that keep one key from stalling everyone:

- a key runs at most ``max_heavy_reads_per_key`` of them at once; as many more wait for a turn
  (the web UI's charts page asks for five charts at once), and past that, 429 + Retry-After (per
  node, like the rate limit);
- a read whose client has gone away is stopped: the store interrupts the query (SQLite) or
  cancels it (PostgreSQL) instead of computing an answer nobody will read.

Each read also has a time limit inside the store (``sqlite_read_timeout_seconds``,
``postgres_statement_timeout_seconds``), answered 503. Key lookups and health checks are not
heavy reads: the stores serve them in a lane of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from tracehive.model.errors import ClientClosedRequest, Overloaded
from tracehive.model.scope import Scope

T = TypeVar("T")


class TooManyReads(Overloaded):
    """A key already runs as many heavy reads as it may at once (429 + Retry-After)."""

    status_code = 429
    error_code = "TOO_MANY_QUERIES"


class ReadGate:
    """Heavy reads running and waiting now, per key id; touched only on the event loop."""

    def __init__(self, per_key: int) -> None:
        self.per_key = per_key
        self.running: dict[str, int] = {}
        self.waiting: dict[str, list[asyncio.Future[None]]] = {}

    async def enter(self, key_id: str) -> None:
        """Take a turn for ``key_id``: at once if it runs fewer than ``per_key``, else after
        waiting (at most ``per_key`` may wait); refused past that."""
        if self.per_key <= 0:
            return
        count = self.running.get(key_id, 0)
        if count < self.per_key:
            self.running[key_id] = count + 1
            return
        queue = self.waiting.setdefault(key_id, [])
        if len(queue) >= self.per_key:
            raise TooManyReads(
                f"this key already runs {count} queries at once and {len(queue)} more wait; "
                "retry when one has finished",
                retry_after=1,
            )
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(turn)
        try:
            await turn  # ``leave`` hands its turn over: the running count stays as it is
        except BaseException:
            if turn in queue:
                queue.remove(turn)
            elif turn.done() and not turn.cancelled():
                self.leave(key_id)  # handed a turn just as the wait was cancelled: pass it on
            raise
        finally:
            if not queue:
                self.waiting.pop(key_id, None)

    def leave(self, key_id: str) -> None:
        if self.per_key <= 0:
            return
        queue = self.waiting.get(key_id)
        while queue:
            turn = queue.pop(0)
            if not turn.done():
                turn.set_result(None)
                return
        count = self.running.get(key_id, 0) - 1
        if count > 0:
            self.running[key_id] = count
        else:
            self.running.pop(key_id, None)


async def heavy_read(request: Request, scope: Scope, read: Awaitable[T]) -> T:
    """Await ``read`` (a store call) within the key's bound on heavy reads, stopping it if the
    client disconnects meanwhile."""
    gate: ReadGate = request.app.state.read_gate
    key_id = scope.key_id or scope.project_id
    try:
        await gate.enter(key_id)
    except BaseException:
        if asyncio.iscoroutine(read):
            read.close()  # never started: no "was never awaited" warning
        raise
    try:
        return await _unless_disconnected(request, read)
    finally:
        gate.leave(key_id)


async def _unless_disconnected(request: Request, read: Awaitable[T]) -> T:
    task = asyncio.ensure_future(read)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        task.cancel()  # the store stops the query, then the cancellation lands here
        try:
            await task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - nobody reads this answer
            pass
        raise ClientClosedRequest("the client closed the connection before its query finished")
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()


async def _disconnected(request: Request) -> None:
    """Returns when the client disconnects. Called once the request's body has been read, so
    the only message left to receive is the disconnect."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
