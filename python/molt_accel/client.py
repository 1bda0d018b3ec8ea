"""``MoltClient``: calls exports of one worker process; ``MoltClientPool``: several of them."""

from __future__ import annotations

import inspect
import itertools
import logging
import threading
import time
from typing import Any

from molt_accel.config import MAX_POOL_SIZE, ExportSpec, WorkerSettings, check_timeout_ms, default_worker_cmd
from molt_accel.disconnect import SyncCancelCheck
from molt_accel.errors import (
    MoltBusy,
    MoltCancelled,
    MoltPayloadTooLarge,
    MoltTimeout,
    MoltWorkerUnavailable,
    error_for_status,
    worker_stopped_the_call,
)
from molt_accel.framing import HEADER_SIZE, AnswerOverLimit, encode_frame
from molt_accel.hooks import Hook, report_answer, report_send
from molt_accel.process import EXIT_GRACE_S, PendingCall, WorkerProcess
from molt_accel.retry import RestartBackoff, Undelivered
from molt_accel.wire import Answer, RawAnswer, decode_payload, encode_payload, encode_request

logger = logging.getLogger("molt_accel")

# The worker answers `Timeout` itself at the deadline; the client gives it this much longer
# before it decides the worker is stuck, cancels, and replaces it.
TIMEOUT_GRACE_S = 0.1
# How often a call with a `cancel_check` asks it while waiting.
CANCEL_POLL_S = 0.01


class MoltClient(WorkerSettings):
    """Talks to one ``molt-worker`` over its stdin/stdout.

    Thread-safe: many threads may call at once; their requests are in flight together and
    one reader thread hands each answer to its caller. The worker starts at the first call
    (or ``start()``), so a client can be built at import time, before a server forks.
    """

    def _init_client(self) -> None:
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._worker: WorkerProcess | None = None
        self._started_once = False
        self._closed = False
        self._restart_backoff = RestartBackoff()

    # -- public API ------------------------------------------------------------------------

    def call(
        self,
        entry: str,
        payload: Any,
        codec: str = "msgpack",
        timeout_ms: int = 250,
        idempotent: bool = False,
        decode_response: bool = True,
        before_send: Hook | None = None,
        after_recv: Hook | None = None,
        metrics_hook: Hook | None = None,
        cancel_check: SyncCancelCheck | None = None,
        retry_on_timeout: bool = False,
        retry_on_busy: bool = False,
        retry_backoff_ms: int = 0,
        retry_backoff_max_ms: int = 0,
    ) -> Any:
        """Runs ``entry`` on the worker and returns its decoded result (or the raw payload
        bytes when ``decode_response`` is False). Raises a ``MoltAccelError`` child."""
        if entry == "__cancel__":
            # Its answer is an acknowledgement the reader skips: the call would wait forever.
            raise ValueError("__cancel__ is sent by the client itself (cancel_check, timeouts)")
        check_timeout_ms(timeout_ms)
        if inspect.iscoroutinefunction(cancel_check):
            raise ValueError("cancel_check is async: MoltClient cannot await it (use AsyncMoltClient)")
        body = encode_payload(payload, codec)
        attempts = self._call_attempts(
            idempotent, retry_on_busy, retry_on_timeout, retry_backoff_ms, retry_backoff_max_ms
        )
        while True:
            try:
                answer = self._exchange(
                    entry, body, codec, timeout_ms, cancel_check, before_send, after_recv, metrics_hook
                )
                break
            except (MoltWorkerUnavailable, MoltBusy, MoltTimeout) as exc:
                delay = attempts.next_delay(exc)
                if delay is None:
                    raise
                if delay > 0:
                    time.sleep(delay)
        if not decode_response:
            return RawAnswer(answer.payload, answer.codec)
        return decode_payload(answer.payload, answer.codec)

    def ping(self, timeout_ms: int = 1000) -> bool:
        """True when the worker answers ``__ping__`` in time (starting it if needed)."""
        self._exchange("__ping__", b"", "raw", timeout_ms, None, None, None, None)
        return True

    def start(self) -> None:
        """Starts the worker now rather than at the first call."""
        self._current_worker()

    @property
    def pid(self) -> int | None:
        """The current worker's process id, or None when none runs."""
        worker = self._worker
        return worker.pid if worker is not None and not worker.dead else None

    def close(self, grace_s: float = EXIT_GRACE_S) -> None:
        """Closes the worker's input and waits for it to exit: it finishes or cancels what it
        has, and is killed if still running after ``grace_s``."""
        worker = self._detach_worker()
        if worker is not None:
            worker.close(wait=True, grace_s=grace_s)

    def _detach_worker(self) -> WorkerProcess | None:
        """Closes the client to new calls and hands over its worker."""
        with self._lock:
            self._closed = True
            worker, self._worker = self._worker, None
        return worker

    def __enter__(self) -> MoltClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request/answer ----------------------------------------------------------------

    def _exchange(
        self,
        entry: str,
        body: bytes,
        codec: str,
        timeout_ms: int,
        cancel_check: SyncCancelCheck | None,
        before_send: Hook | None,
        after_recv: Hook | None,
        metrics_hook: Hook | None,
    ) -> Answer:
        request_id = next(self._ids)
        call = PendingCall()
        worker = self._registered_worker(request_id, call)
        try:
            frame = encode_frame(
                encode_request(worker.wire, request_id, entry, timeout_ms, codec, body),
                self.max_frame_size,
            )
        except BaseException:
            worker.abandon(request_id)  # never sent: its registration must not keep the worker
            raise
        call.frame_length = len(frame) - HEADER_SIZE
        report_send(before_send, entry, request_id, codec, len(body), timeout_ms)
        started = time.perf_counter()
        try:
            worker.send(
                frame, time.monotonic() + timeout_ms / 1000.0 + TIMEOUT_GRACE_S if timeout_ms else None
            )
        except MoltWorkerUnavailable as exc:
            # A failed write to a closed pipe means the worker never read the whole frame.
            worker.abandon(request_id)
            self._drop(worker)
            raise Undelivered(exc.message) from None
        except MoltTimeout as exc:
            # The worker reads nothing (stopped, hung): it is replaced, as after a wait that
            # timed out, and this call ends at its deadline, not whenever the worker wakes.
            worker.abandon(request_id)
            self._drop(worker)
            raise MoltTimeout(exc.message, request_id=request_id) from None

        if not self._wait(worker, call, request_id, started, timeout_ms, cancel_check):
            # No answer in time, and the worker did not answer `Timeout` itself: it is
            # stuck or overloaded. It was sent `__cancel__`; replace it once its other
            # calls drain.
            self._drop(worker)
            raise MoltTimeout(f"no answer from the worker within {timeout_ms} ms", request_id=request_id)

        if call.error is not None:
            # Over a frame limit is about this call; the rest say the worker died.
            if not isinstance(call.error, (AnswerOverLimit, MoltPayloadTooLarge)):
                self._drop(worker)
            raise call.error
        answer = call.answer
        assert answer is not None
        self._restart_backoff.worker_answered()
        client_ms = (time.perf_counter() - started) * 1000.0
        report_answer(after_recv, metrics_hook, entry, request_id, answer, len(body), client_ms)
        if answer.status == "Cancelled" and not call.cancel_sent:
            self._drop(worker)
            raise worker_stopped_the_call(answer.error, request_id)
        if answer.status != "Ok":
            raise error_for_status(answer.status, answer.error, request_id)
        return answer

    def _registered_worker(self, request_id: int, call: PendingCall) -> WorkerProcess:
        """The current worker, with ``call`` registered on it. A worker retired by another
        thread in between refuses the call; nothing was sent, so the next current worker
        takes it, without counting as a restart."""
        while True:
            worker = self._current_worker()
            try:
                worker.register(request_id, call)
                return worker
            except MoltWorkerUnavailable as exc:
                # Read before _drop, which closes a dead worker's input too.
                replaced = worker.replaced
                self._drop(worker)
                if not replaced:
                    raise Undelivered(exc.message) from None  # it died: a restart

    def _wait(
        self,
        worker: WorkerProcess,
        call: PendingCall,
        request_id: int,
        started: float,
        timeout_ms: int,
        cancel_check: SyncCancelCheck | None,
    ) -> bool:
        """Waits for the answer; False on a client-side timeout. Raises ``MoltCancelled``
        when ``cancel_check`` says the caller is gone (after telling the worker)."""
        deadline = started + timeout_ms / 1000.0 + TIMEOUT_GRACE_S if timeout_ms else None
        check = cancel_check
        while True:
            remaining = None if deadline is None else deadline - time.perf_counter()
            if remaining is not None and remaining <= 0:
                break
            if check is None:
                # Nothing to poll: one blocking wait for the rest of the time.
                if call.lock.acquire(timeout=-1 if remaining is None else remaining):
                    return True
                break
            if call.lock.acquire(
                timeout=CANCEL_POLL_S if remaining is None else min(remaining, CANCEL_POLL_S)
            ):
                return True
            cancelled = _cancel_requested(check)
            if cancelled is None:
                check = None  # async: it cannot be asked here; warned once, not at every poll
            elif cancelled and worker.abandon(request_id, cancel=True):
                raise MoltCancelled(
                    "the caller went away; the worker request was cancelled", request_id=request_id
                )
        if worker.abandon(request_id, cancel=True):
            return False
        call.lock.acquire()  # the answer won the race against our timeout: it is settled
        return True

    # -- the worker process ----------------------------------------------------------------

    def _current_worker(self) -> WorkerProcess:
        worker = self._worker
        if worker is not None and not worker.dead:
            return worker
        with self._lock:
            worker = self._worker
            if worker is not None and not worker.dead:
                return worker
            if self._closed:
                raise MoltWorkerUnavailable("the client is closed")
            if self._started_once and not self.restart_on_failure:
                reason = worker.death_reason if worker is not None else "the worker stopped"
                raise MoltWorkerUnavailable(f"{reason} (restart_on_failure is off)")
            if worker is not None:
                worker.close()  # died while idle: reap it and release its pipes now
                # Closed once: calls failing fast in a restart cooldown must not close it
                # again, each starting a reaper thread.
                self._worker = None
            self._restart_backoff.before_start()
            self._started_once = True
            self._worker = WorkerProcess(self.worker_cmd, self.wire, self.max_frame_size, self.env, self.cwd)
            self._restart_backoff.started(self._worker)
            return self._worker

    def _drop(self, worker: WorkerProcess) -> None:
        """Stops sending new calls to ``worker``; it exits once its calls have drained."""
        with self._lock:
            if self._worker is worker:
                self._worker = None
        if worker.dead:
            worker.close()
        else:
            worker.retire()

    def _forget_worker_after_fork(self) -> None:
        self._lock = threading.Lock()
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.forget_after_fork()
        # The child has started no worker of its own: restart_on_failure=False must not read
        # the parent's as its one chance.
        self._started_once = False
        self._restart_backoff = RestartBackoff()


def _cancel_requested(cancel_check: SyncCancelCheck) -> bool | None:
    """Whether the caller went away; None when the check turns out to be async, which a
    sync call cannot await (the caller stops asking it)."""
    try:
        said: Any = cancel_check()
    except Exception:
        logger.exception("molt_accel cancel_check raised; treating it as not cancelled")
        return False
    if inspect.isawaitable(said):
        # An async check (ASGI's is_disconnected) cannot be awaited from a sync call, and a
        # coroutine is truthy: counting it as "cancelled" would cancel every call.
        _discard(said)
        logger.warning("molt_accel cancel_check %r is async; MoltClient ignores it", cancel_check)
        return None
    return bool(said)


def _discard(awaitable: Any) -> None:
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()  # no "coroutine was never awaited" warning


class MoltClientPool:
    """Several workers behind one ``call``: requests go round-robin across them."""

    def __init__(
        self,
        worker_cmd: list[str] | None = None,
        pool_size: int | None = None,
        **client_options: Any,
    ) -> None:
        if pool_size is None:
            from molt_accel.config import pool_size_from_env

            pool_size = pool_size_from_env()
        if not 1 <= pool_size <= MAX_POOL_SIZE:
            raise ValueError(f"pool_size must be from 1 to {MAX_POOL_SIZE}, got {pool_size}")
        command = list(worker_cmd) if worker_cmd else default_worker_cmd()
        self.clients = [MoltClient(worker_cmd=command, **client_options) for _ in range(pool_size)]
        self._next = itertools.count()

    @property
    def worker_cmd(self) -> list[str]:
        return self.clients[0].worker_cmd

    def call(self, entry: str, payload: Any, **options: Any) -> Any:
        client = self.clients[next(self._next) % len(self.clients)]
        return client.call(entry, payload, **options)

    def ping(self, timeout_ms: int = 1000) -> bool:
        return all(client.ping(timeout_ms) for client in self.clients)

    def start(self) -> None:
        for client in self.clients:
            client.start()

    def exports(self) -> dict[str, ExportSpec]:
        return self.clients[0].exports()

    def close(self) -> None:
        """Closes every worker at once and waits for them all: a pool of N workers that each
        take the grace period to stop takes one grace period, not N."""
        workers = [worker for client in self.clients if (worker := client._detach_worker())]
        closing = []
        for worker in workers:
            try:
                worker.close(wait=False)
                closing.append(worker)
            except RuntimeError:  # no thread to be had: this one is closed here and now
                worker.close(wait=True)
        for worker in closing:
            worker.wait_closed()

    def __enter__(self) -> MoltClientPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
