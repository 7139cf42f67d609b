"""The import's deadline, as the long checks of one file see it.

The importer stops starting files when its time is up (``import.max_seconds``), but one file
can take long on its own: millions of tiny fragments, or a deflated data set that inflates to
gigabytes. Those checks take a :class:`Deadline` and call :meth:`Deadline.spend` as they work;
it reads the clock once per :data:`CHECK_EVERY` bytes of work, so small files never read it
(tests count clock readings) and a 4 GiB file reads it a few thousand times.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Bytes of work (parsed, inflated or skipped) between two clock readings.
CHECK_EVERY = 1 << 20


class TimeLimitReached(Exception):
    """The import's deadline passed while one file was being checked."""


class Deadline:
    """A clock reading after which work must stop, checked every :data:`CHECK_EVERY` bytes.

    Parameters
    ----------
    at : float or None
        The clock reading at which to stop; None for no limit.
    clock : callable
        Monotonic seconds (the importer's :class:`~kiosk.sources.scan_limits.ScanLimits`
        clock, so tests can drive it).
    """

    __slots__ = ("_at", "_clock", "_owed")

    def __init__(self, at: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._at, self._clock, self._owed = at, clock, 0

    def spend(self, nbytes: int) -> None:
        """Account for ``nbytes`` of work; read the clock when enough has been done.

        Raises
        ------
        TimeLimitReached
            The deadline has passed.
        """
        if self._at is None:
            return
        self._owed += nbytes
        if self._owed >= CHECK_EVERY:
            self._owed = 0
            if self._clock() >= self._at:
                raise TimeLimitReached("the import's time limit ran out while this file was "
                                       "being checked")
