"""Turn off SQLite's global memory statistics, once per process, before the first connection.

With statistics on (SQLite's default), every allocation SQLite makes takes one process-wide
mutex to update the counters. A chart or search with many JSON filters allocates millions of
times, so the heavy-read threads held that mutex most of the time and the writer queued on it:
acks took twice as long whenever charts ran (bench/hostile.py, heavy-queries; py-spy showed the
writer in ``sqlite3Malloc -> pthread_mutex_lock``). tracehive never reads those statistics.

``sqlite3_config`` only works while SQLite is not initialised, and importing ``sqlite3``
initialises it. SQLite's documented way back is ``sqlite3_shutdown()``, which is safe only when
nothing of SQLite's is alive: that is checked first (``sqlite3_memory_used()`` is 0 exactly when
no connection or statement exists, which the statistics still being on make reliable), and it is
done once, before tracehive's first connection. The calls go through ctypes to the very library
the ``_sqlite3`` extension uses (its own handle resolves the symbols the way the extension does,
whether SQLite is linked dynamically or built in). Anything unexpected leaves SQLite as it is:
this changes speed, never behaviour.
"""

from __future__ import annotations

import ctypes
import logging
import threading

log = logging.getLogger(__name__)

# From sqlite3.h.
_SQLITE_CONFIG_MEMSTATUS = 9
_SQLITE_OK = 0

_lock = threading.Lock()
_outcome: bool | None = None


def disable_memstatus() -> bool:
    """True when SQLite's allocation statistics are off in this process (this call or an earlier
    one did it); False when it was too late (SQLite already initialised) or not possible."""
    global _outcome
    with _lock:
        if _outcome is None:
            _outcome = _configure()
        return _outcome


def _configure() -> bool:
    try:
        import _sqlite3

        library = ctypes.CDLL(_sqlite3.__file__)
        memory_used, shutdown, config, initialize = (library.sqlite3_memory_used, library.sqlite3_shutdown,
                                                     library.sqlite3_config, library.sqlite3_initialize)
    except (ImportError, OSError, AttributeError) as exc:
        log.debug("could not turn off SQLite's memory statistics: %s", exc)
        return False
    memory_used.restype = ctypes.c_int64
    shutdown.restype = config.restype = initialize.restype = ctypes.c_int
    if memory_used() != 0:  # a connection is open somewhere in the process: leave SQLite alone
        log.debug("SQLite's memory statistics stay on: SQLite is in use")
        return False
    if shutdown() != _SQLITE_OK:
        return False
    code = config(ctypes.c_int(_SQLITE_CONFIG_MEMSTATUS), ctypes.c_int(0))
    if initialize() != _SQLITE_OK:  # pragma: no cover - sqlite3.connect would initialise it anyway
        log.warning("SQLite did not initialise again after turning off its memory statistics")
    return code == _SQLITE_OK
