"""When a failed call is tried again, shared by ``MoltClient`` and ``AsyncMoltClient``: the
rules live here once, and each client only sleeps its own way (``time.sleep`` or
``asyncio.sleep``)."""

from __future__ import annotations

import math
import random
import time
from typing import Protocol

from molt_accel.errors import MoltAccelError, MoltBusy, MoltTimeout, MoltWorkerUnavailable

# A retry's wait: past a minute, a caller is better told (and the sleep has to stay within
# what the platform's clocks take).
MAX_BACKOFF_MS = 60_000

# Retries after `Busy` (and after a timeout, for idempotent calls) when enabled.
MAX_RETRIES = 2


class Undelivered(MoltWorkerUnavailable):
    """The worker was gone (or being replaced) before the request reached it: sending the
    request to a new worker cannot run it twice."""


class CallAttempts:
    """The retry state of one call.

    A worker death is survived by sending the call to a new worker, ``max_restarts`` times
    at most: always when the request was never delivered, else only for idempotent calls.
    ``Busy`` (nothing ran) is retried when ``retry_on_busy``; a timeout only when
    ``retry_on_timeout`` and the call is idempotent; both at most ``MAX_RETRIES`` times,
    after an exponential backoff with jitter.
    """

    def __init__(
        self,
        *,
        idempotent: bool,
        restart_on_failure: bool,
        max_restarts: int,
        retry_on_busy: bool = False,
        retry_on_timeout: bool = False,
        backoff_ms: int = 0,
        backoff_max_ms: int = 0,
    ) -> None:
        self._idempotent = idempotent
        self._restarts_left = max_restarts if restart_on_failure else 0
        self._retry_on_busy = retry_on_busy
        self._retry_on_timeout = retry_on_timeout and idempotent
        self._backoff_ms = backoff_ms
        self._backoff_max_ms = backoff_max_ms
        self._retries = 0

    def next_delay(self, error: MoltAccelError) -> float | None:
        """Seconds to wait before trying again after ``error``, or None to give up."""
        if isinstance(error, Undelivered):
            return self._restart()
        if isinstance(error, MoltWorkerUnavailable):
            return self._restart() if self._idempotent else None
        if isinstance(error, MoltBusy):
            return self._retry() if self._retry_on_busy else None
        if isinstance(error, MoltTimeout):
            return self._retry() if self._retry_on_timeout else None
        return None

    def _restart(self) -> float | None:
        # A new worker is started right away: the restart backoff of the client, not this,
        # spaces out workers that keep dying.
        if self._restarts_left <= 0:
            return None
        self._restarts_left -= 1
        return 0.0

    def _retry(self) -> float | None:
        if self._retries >= MAX_RETRIES:
            return None
        self._retries += 1
        return backoff_delay(self._backoff_ms, self._backoff_max_ms, self._retries)


def backoff_delay(base_ms: int, max_ms: int, attempt: int) -> float:
    """Seconds before retry number ``attempt`` (from 1): ``base_ms`` doubled each time,
    capped by ``max_ms`` when set and by a minute always, with full jitter."""
    if base_ms <= 0:
        return 0.0
    delay_ms = min(base_ms * (2 ** (attempt - 1)), max_ms if max_ms > 0 else MAX_BACKOFF_MS, MAX_BACKOFF_MS)
    # Full jitter spreads the retries of many callers that failed together.
    return random.uniform(delay_ms / 2, delay_ms) / 1000.0


class StartedWorker(Protocol):
    """What the restart backoff reads of a worker it saw start, sync or async."""

    @property
    def started_at(self) -> float: ...

    @property
    def died_at(self) -> float | None: ...


class RestartBackoff:
    """Spaces out the starts of a worker that keeps dying right after it starts.

    Without it, every call to a worker that crashes at startup (a bad database path, a
    missing library) starts one or two new processes. After ``EARLY_DEATHS`` deaths in a
    row, each less than ``YOUTH_S`` after its start, no worker is started for a cooldown
    that doubles from ``COOLDOWN_MIN_S`` to ``COOLDOWN_MAX_S``: calls fail fast meanwhile.
    An answer from a worker resets it.
    """

    EARLY_DEATHS = 2
    YOUTH_S = 1.0
    COOLDOWN_MIN_S = 0.1
    COOLDOWN_MAX_S = 5.0

    def __init__(self) -> None:
        self._early_deaths = 0
        self._cooldown_until = 0.0
        # The worker started last, until its fate is noted: each death counts once.
        self._last_started: StartedWorker | None = None

    def before_start(self) -> None:
        """Called, under the client's start lock, before it starts a worker: notes how the
        previous one ended. Raises ``MoltWorkerUnavailable`` in a cooldown."""
        now = time.monotonic()
        self.settle(now)
        if now < self._cooldown_until:
            wait_ms = (self._cooldown_until - now) * 1000.0
            raise MoltWorkerUnavailable(
                f"the worker died right after starting {self._early_deaths} times in a row; "
                f"next start in {wait_ms:.0f} ms"
            )

    def settle(self, now: float | None = None) -> None:
        """Notes how the worker started last ended, and lets it go: a client closing its
        worker for good (its event loop ended) must not hold it, and its loop, until the
        next start."""
        previous_lifetime_s = self._previous_lifetime()
        if previous_lifetime_s is not None:
            self._note_death(previous_lifetime_s, time.monotonic() if now is None else now)

    def started(self, worker: StartedWorker) -> None:
        """Called right after a start: the next ``before_start`` reads how long it lived."""
        self._last_started = worker

    def worker_answered(self) -> None:
        # A plain store, safe from any thread: the worker works, so starts are not throttled.
        self._early_deaths = 0

    def _previous_lifetime(self) -> float | None:
        """How long the worker started last lived, reported once: None when there is none
        to report, infinite when it was replaced alive (stuck, not crashing)."""
        previous, self._last_started = self._last_started, None
        if previous is None:
            return None
        if previous.died_at is None:
            return math.inf
        return previous.died_at - previous.started_at

    def _note_death(self, lifetime_s: float, now: float) -> None:
        if lifetime_s >= self.YOUTH_S:
            self._early_deaths = 0
            return
        self._early_deaths += 1
        if self._early_deaths >= self.EARLY_DEATHS:
            doublings = self._early_deaths - self.EARLY_DEATHS
            cooldown = min(self.COOLDOWN_MIN_S * 2 ** min(doublings, 16), self.COOLDOWN_MAX_S)
            self._cooldown_until = now + cooldown
