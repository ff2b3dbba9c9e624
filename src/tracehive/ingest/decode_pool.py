"""OTLP decode and span mapping (and REST event batches: ``api/batch_decode.py``) in worker
processes (issue #15), in front of the one writer.

Decoding a protobuf export and mapping its spans to events is pure Python (about 0.1 ms of CPU a
span, bench/otlp.py and py-spy): in the server's process it holds the GIL that the HTTP handling
and the writer thread also need, so one process tops out at one core. A ``DecodePool`` runs
``otlp_ingest.prepare`` in ``processes`` worker processes instead; the events come back (as one
JSON document, ``event_transfer``) to the server, which writes them and acks once committed,
exactly as before: only where the CPU work happens changes, never what a 200 means.

- Workers start on first use (a server that gets no large OTLP body never starts one), from a
  ``forkserver`` (``spawn`` where there is none): never a ``fork`` of a threaded server.
- A worker that dies (killed, out of memory) breaks the pool: that request is decoded in a thread
  instead, and the next one starts a new pool. Nothing acknowledged depends on a worker.
- ``processes=0`` keeps the earlier behaviour: a thread of the server's own process.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from tracehive.ingest.event_transfer import Packed, pack, unpack
from tracehive.ingest.otlp_decode import DecodeLimits
from tracehive.ingest.otlp_ingest import Prepared, prepare

log = logging.getLogger(__name__)
T = TypeVar("T")


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class DecodePool:
    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self.broken = 0  # pools lost to a dead worker (for tests and logs)

    def _get(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(max_workers=self.processes, mp_context=_context())
            return self._executor

    def _drop(self, executor: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is executor:
                self._executor = None
                self.broken += 1
        executor.shutdown(wait=False, cancel_futures=True)

    async def prepare(self, body: bytes, *, protobuf: bool, limits: DecodeLimits,
                      default_source: str | None) -> Prepared:
        events, rejected, reasons = await self.run(functools.partial(
            _prepare_packed, body, protobuf=protobuf, limits=limits, default_source=default_source))
        return Prepared(unpack(events), rejected, reasons)

    async def run(self, call: Callable[[], T]) -> T:
        """``call()`` in a worker process (a module-level function and picklable arguments), or in
        a thread of this process without workers or when one died."""
        if self.processes <= 0:
            return await asyncio.to_thread(call)
        executor = self._get()
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, call)
        except BrokenProcessPool:
            log.error("decode pool: a worker process died; decoding this request in a thread")
            self._drop(executor)
            return await asyncio.to_thread(call)

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def _prepare_packed(body: bytes, *, protobuf: bool, limits: DecodeLimits,
                    default_source: str | None) -> tuple[Packed, int, list[str]]:
    """``prepare`` in the worker, its events packed for the trip back (``event_transfer``)."""
    prepared = prepare(body, protobuf=protobuf, limits=limits, default_source=default_source)
    return pack(prepared.events), prepared.rejected, prepared.reasons
