"""``AsyncMoltClient``: the worker protocol on asyncio pipes, for async Django views.

Cancelling the task that awaits ``call()`` (Django cancels an async view whose client
disconnected) sends ``__cancel__`` to the worker, so the work really stops.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import os
import select
import signal
import time
from collections.abc import AsyncGenerator
from typing import Any

from molt_accel.client import CANCEL_POLL_S, TIMEOUT_GRACE_S
from molt_accel.config import WorkerSettings, check_timeout_ms
from molt_accel.disconnect import CancelCheck
from molt_accel.errors import (
    MoltBusy,
    MoltCancelled,
    MoltProtocolError,
    MoltTimeout,
    MoltWorkerUnavailable,
    MoltWrongEventLoop,
    error_for_status,
    worker_stopped_the_call,
)
from molt_accel.framing import (
    ANSWER_PREFIX_SIZE,
    DISCARD_CHUNK_SIZE,
    HEADER_SIZE,
    AnswerOverLimit,
    announced_length,
    answer_over_limit,
    check_answer_start,
    encode_frame,
    over_the_workers_limit,
    refused_frame,
)
from molt_accel.hooks import Hook, report_answer, report_send
from molt_accel.process import EXIT_GRACE_S, exit_was_a_crash, start_failure
from molt_accel.retry import RestartBackoff, Undelivered
from molt_accel.wire import (
    Answer,
    RawAnswer,
    decode_answer,
    decode_payload,
    encode_cancel,
    encode_payload,
    encode_request,
)

logger = logging.getLogger("molt_accel")


# How long a reader that saw its worker's output end waits for the exit status it reports.
EXIT_STATUS_WAIT_S = 0.2


class _AsyncWorker:
    """One worker child driven by asyncio: a reader task settles one future per call."""

    def __init__(self, proc: asyncio.subprocess.Process, max_frame_size: int, started_at: float) -> None:
        self.proc = proc
        self.max_frame_size = max_frame_size
        self.pending: dict[int, asyncio.Future[Answer]] = {}
        # The length of each pending call's request frame, for a refusal under id 0.
        self.frame_lengths: dict[int, int] = {}
        self.dead = False
        self.death_reason = ""
        self.started_at = started_at
        self.died_at: float | None = None
        self._closing = False
        # One frame at a time into the pipe, each once the worker has read what came before
        # (below asyncio's high-water mark): a worker that reads nothing holds the callers,
        # not an ever larger write buffer.
        self._write_lock = asyncio.Lock()
        self.reader = asyncio.get_running_loop().create_task(self._read_answers())

    async def _read_answers(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        reason = "worker closed its output"
        killed_here = False
        try:
            while True:
                try:
                    header = await stdout.readexactly(HEADER_SIZE)
                    length = announced_length(header)
                    if length > self.max_frame_size:
                        self._settle_with(await self._read_past(length))
                        continue
                    body = await stdout.readexactly(length)
                except asyncio.IncompleteReadError as exc:
                    if exc.partial:
                        reason = "worker output ended inside a frame"
                    break
                answer = decode_answer(body)
                if answer.entry == "__cancel__":
                    continue
                if refused := refused_frame(answer.request_id, answer.error):
                    self._settle_refused(*refused)
                    continue
                future = self.pending.pop(answer.request_id, None)
                if future is not None and not future.done():
                    future.set_result(answer)
        except MoltProtocolError as exc:
            reason = f"worker broke the protocol: {exc}"
            killed_here = True
            if self.proc.returncode is None:
                try:
                    self.proc.kill()
                except ProcessLookupError:
                    pass
        except OSError as exc:
            reason = f"reading from the worker failed: {exc}"
        code = self.proc.returncode
        if code is None:
            try:
                code = await asyncio.wait_for(self.proc.wait(), EXIT_STATUS_WAIT_S)
            except TimeoutError:
                code = None
        if code and not killed_here:  # a kill by this client is not the reason
            reason = f"worker exited with code {code}" if code > 0 else f"worker killed by signal {-code}"
        self.dead = True
        self.death_reason = reason
        self._note_death(crashed=exit_was_a_crash(code))
        for request_id, future in list(self.pending.items()):
            self.pending.pop(request_id, None)
            if not future.done():
                future.set_exception(MoltWorkerUnavailable(reason, request_id=request_id))

    async def _read_past(self, length: int) -> AnswerOverLimit:
        stdout = self.proc.stdout
        assert stdout is not None
        first = await stdout.read(1)
        check_answer_start(first, length)
        prefix = first + await stdout.readexactly(min(length, ANSWER_PREFIX_SIZE) - 1)
        over = answer_over_limit(prefix, length, self.max_frame_size)
        left = length - len(prefix)
        while left > 0:
            left -= len(await stdout.readexactly(min(left, DISCARD_CHUNK_SIZE)))
        return over

    def _settle_with(self, error: AnswerOverLimit) -> None:
        future = self.pending.pop(error.request_id or 0, None)
        if future is not None and not future.done():
            future.set_exception(error)

    async def send(self, frame: bytes) -> None:
        """Writes ``frame`` once the worker has taken in what was written before it."""
        async with self._write_lock:
            stdin = self._open_input()
            try:
                await stdin.drain()
            except ConnectionError:
                pass  # the pipe closed: _open_input says so
            self._open_input().write(frame)

    def send_now(self, frame: bytes) -> None:
        """Writes a small control frame (``__cancel__``) at once, past the frames waiting."""
        self._open_input().write(frame)

    def _open_input(self) -> asyncio.StreamWriter:
        stdin = self.proc.stdin
        if self.dead or stdin is None or _reader_gone(stdin):
            if not self._closing:
                # The pipe closed under us: the process exited, and its reader may not
                # have noticed yet. The restart backoff needs to know it died, and when.
                self._note_death()
            raise MoltWorkerUnavailable(self.death_reason or "worker input is closed")
        return stdin

    def _settle_refused(self, length: int, limit: int) -> None:
        """Fails the oldest pending call whose frame had the refused length (without it, the
        call waited for its timeout, or for ever without one)."""
        for request_id, future in list(self.pending.items()):
            if self.frame_lengths.get(request_id) == length:
                self.pending.pop(request_id, None)
                if not future.done():
                    future.set_exception(over_the_workers_limit(length, limit, request_id))
                return

    def forget_after_fork(self) -> None:
        """In a forked child: let go of the worker's input, which belongs to the parent.

        The child's copy of the pipe's write end would keep the worker from ever seeing the
        end of its input. The copy is pointed at /dev/null rather than closed: the transport
        copied with the parent's loop still owns that descriptor number."""
        self.dead = True
        self.death_reason = "worker belongs to the parent process"
        pipe = self.proc.stdin.transport.get_extra_info("pipe") if self.proc.stdin else None
        if pipe is None:
            return
        try:
            devnull = os.open(os.devnull, os.O_RDWR)
            try:
                os.dup2(devnull, pipe.fileno(), inheritable=False)
            finally:
                os.close(devnull)
        except (OSError, ValueError):
            pass

    def _note_death(self, crashed: bool = False) -> None:
        # An exit this client asked for (a worker retired alive, then closed) is no death
        # for the restart backoff, which would take a stuck worker for one that crashes; a
        # crash after the close still is one.
        if self.died_at is None and (not self._closing or crashed):
            self.died_at = time.monotonic()

    async def close(self, grace_s: float = EXIT_GRACE_S) -> None:
        self._closing = True
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), grace_s)
        except TimeoutError:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass  # it exited just then
            await self.proc.wait()
        await asyncio.gather(self.reader, return_exceptions=True)


class AsyncMoltClient(WorkerSettings):
    """The asyncio twin of ``MoltClient``, for one event loop at a time.

    Its worker's pipes and reader belong to the loop that started it, and it closes them
    when that loop shuts down. A call from another loop while that one is open is a
    ``RuntimeError``; after it, the client starts a new worker in the new loop."""

    def _init_client(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_watch: AsyncGenerator[None, None] | None = None
        self._ids = itertools.count(1)
        self._worker: _AsyncWorker | None = None
        self._starting: asyncio.Lock | None = None
        self._started_once = False
        self._closed = False
        # Replaced workers still draining their calls. close() closes them too: the tasks
        # that drain them are cancelled when the loop shuts down, and would leak them.
        self._retired: set[_AsyncWorker] = set()
        self._restart_backoff = RestartBackoff()

    @property
    def pid(self) -> int | None:
        worker = self._worker
        return worker.proc.pid if worker is not None and not worker.dead else None

    async def call(
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
        cancel_check: CancelCheck | None = None,
        retry_on_timeout: bool = False,
        retry_on_busy: bool = False,
        retry_backoff_ms: int = 0,
        retry_backoff_max_ms: int = 0,
    ) -> Any:
        """Runs ``entry``; see ``MoltClient.call``, whose retry rules it shares (the backoff
        sleeps without blocking the loop). ``cancel_check`` may be async: it is awaited."""
        if entry == "__cancel__":
            # Its answer is an acknowledgement the reader skips: the call would wait forever.
            raise ValueError("__cancel__ is sent by the client itself (cancel_check, timeouts)")
        check_timeout_ms(timeout_ms)
        self._check_loop()
        body = encode_payload(payload, codec)
        attempts = self._call_attempts(
            idempotent, retry_on_busy, retry_on_timeout, retry_backoff_ms, retry_backoff_max_ms
        )
        while True:
            try:
                answer = await self._exchange(
                    entry, body, codec, timeout_ms, cancel_check, before_send, after_recv, metrics_hook
                )
                break
            except (MoltWorkerUnavailable, MoltBusy, MoltTimeout) as exc:
                delay = attempts.next_delay(exc)
                if delay is None:
                    raise
                if delay > 0:
                    await asyncio.sleep(delay)
        if not decode_response:
            return RawAnswer(answer.payload, answer.codec)
        return decode_payload(answer.payload, answer.codec)

    async def ping(self, timeout_ms: int = 1000) -> bool:
        self._check_loop()
        await self._exchange("__ping__", b"", "raw", timeout_ms, None, None, None, None)
        return True

    async def close(self, grace_s: float = EXIT_GRACE_S) -> None:
        """Closes the worker, and the replaced ones still draining, and waits for them; one
        still running after ``grace_s`` is killed."""
        self._check_loop()
        self._closed = True
        workers = self._take_workers()
        await asyncio.gather(*(worker.close(grace_s) for worker in workers))

    def _forget_worker_after_fork(self) -> None:
        for worker in self._take_workers():
            worker.forget_after_fork()
        # The parent's loop, as copied, will never run here: the child starts afresh.
        self._loop = self._loop_watch = self._starting = None
        self._started_once = False
        self._restart_backoff = RestartBackoff()

    async def __aenter__(self) -> AsyncMoltClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _check_loop(self) -> None:
        """Refuses a call from a loop other than the open one that serves this client."""
        serving = self._loop
        if serving is None or serving is asyncio.get_running_loop():
            return
        if not serving.is_closed():
            raise MoltWrongEventLoop(
                "this AsyncMoltClient's worker is served by another event loop, which is still "
                "open; use one client per loop (the decorator keeps one per loop), or MoltClient "
                "from threads"
            )
        # Closed without asyncio.run's shutdown of async generators, which would have closed
        # its workers: nothing can read them any more.
        for worker in self._take_workers():
            worker.dead = True
            if worker.proc.returncode is None:
                try:
                    os.kill(worker.proc.pid, signal.SIGKILL)
                except OSError:
                    pass  # it exited meanwhile
        self._loop = self._loop_watch = None

    async def _serve_running_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._starting = None  # an asyncio.Lock serves one loop
        self._loop_watch = self._close_workers_when_loop_ends()
        await self._loop_watch.__anext__()

    async def _close_workers_when_loop_ends(self) -> AsyncGenerator[None, None]:
        """asyncio has no "loop closing" callback, but ``asyncio.run`` (and asgiref's
        ``async_to_sync``) closes the async generators started in a loop before it closes
        the loop: this one waits there, so the next loop starts afresh."""
        try:
            yield
        finally:
            workers = self._take_workers()
            # Let go of the loop: the generator holds its finalizer, a contended lock the loop.
            self._loop = self._loop_watch = self._starting = None
            await asyncio.gather(*(worker.close() for worker in workers))
            self._restart_backoff.settle()

    def _take_workers(self) -> set[_AsyncWorker]:
        workers = set(self._retired)
        if self._worker is not None:
            workers.add(self._worker)
        self._worker = None
        self._retired.clear()
        return workers

    async def _current_worker(self) -> _AsyncWorker:
        worker = self._worker
        if worker is not None and not worker.dead:
            return worker
        if self._loop is None:
            await self._serve_running_loop()
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            worker = self._worker
            if worker is not None and not worker.dead:
                return worker
            if self._closed:
                raise MoltWorkerUnavailable("the client is closed")
            if self._started_once and not self.restart_on_failure:
                raise MoltWorkerUnavailable("the worker stopped (restart_on_failure is off)")
            if worker is not None:
                self._retire(worker)  # it died: close its pipes and reap it
            self._restart_backoff.before_start()
            self._started_once = True
            started_at = time.monotonic()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *self.worker_cmd,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    env=self.env,
                    cwd=self.cwd,
                    limit=max(self.max_frame_size, 1 << 16),
                )
            except OSError as exc:
                raise start_failure(self.worker_cmd[0], exc) from None
            worker = _AsyncWorker(proc, self.max_frame_size, started_at)
            if self._closed:  # close() ran while the worker started: it serves nobody
                await worker.close()
                raise MoltWorkerUnavailable("the client is closed")
            self._worker = worker
            self._restart_backoff.started(worker)
            return worker

    async def _exchange(
        self,
        entry: str,
        body: bytes,
        codec: str,
        timeout_ms: int,
        cancel_check: CancelCheck | None,
        before_send: Hook | None,
        after_recv: Hook | None,
        metrics_hook: Hook | None,
    ) -> Answer:
        worker = await self._current_worker()
        request_id = next(self._ids)
        frame = encode_frame(
            encode_request(self.wire, request_id, entry, timeout_ms, codec, body), self.max_frame_size
        )
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        worker.pending[request_id] = future
        worker.frame_lengths[request_id] = len(frame) - HEADER_SIZE
        report_send(before_send, entry, request_id, codec, len(body), timeout_ms)
        started = time.perf_counter()
        wait_s = timeout_ms / 1000.0 + TIMEOUT_GRACE_S if timeout_ms else None
        try:
            # In this task (not asyncio.wait_for's inner one, whose result can win over a
            # cancellation on Python 3.11): a cancelled caller is always cancelled.
            async with asyncio.timeout(wait_s):
                try:
                    await worker.send(frame)
                except MoltWorkerUnavailable as exc:
                    # Nothing reached the worker: the call may go to a new one whatever it is.
                    worker.pending.pop(request_id, None)
                    self._retire(worker)
                    raise Undelivered(exc.message) from None
                answer = await self._await_answer(future, request_id, cancel_check)
        except TimeoutError:
            answer = await self._answer_that_beat_the_deadline(future, worker)
            if answer is None:
                # The finally below withdraws the call; the old worker is closed only once
                # its calls have drained, so that cancel still reaches it.
                self._retire(worker)
                raise MoltTimeout(
                    f"no answer from the worker within {timeout_ms} ms", request_id=request_id
                ) from None
        finally:
            # Whatever ended the wait without an answer (the task was cancelled because the
            # client disconnected, the cancel_check fired, anything raised), the call must
            # not stay pending, and the worker must stop its work.
            self._withdraw(worker, request_id)
            worker.frame_lengths.pop(request_id, None)
        self._restart_backoff.worker_answered()
        client_ms = (time.perf_counter() - started) * 1000.0
        report_answer(after_recv, metrics_hook, entry, request_id, answer, len(body), client_ms)
        if answer.status == "Cancelled":  # this client's cancels come after the call is withdrawn
            self._retire(worker)
            raise worker_stopped_the_call(answer.error, request_id)
        if answer.status != "Ok":
            raise error_for_status(answer.status, answer.error, request_id)
        return answer

    @staticmethod
    async def _answer_that_beat_the_deadline(
        future: asyncio.Future[Answer], worker: _AsyncWorker
    ) -> Answer | None:
        """The answer, when it is in by the time the deadline is seen: after a stall of the
        event loop (a blocking view, a long collection) the answer in the pipe and the
        deadline are seen in the same turn. The reader gets that turn first, as MoltClient
        takes an answer that won the race. What settled the call instead is raised: a worker
        that died meanwhile fails its calls once its reader has its exit status."""
        if not future.done():
            await asyncio.sleep(0)
        stdin = worker.proc.stdin
        if not future.done() and stdin is not None and _reader_gone(stdin):
            await asyncio.wait({worker.reader}, timeout=EXIT_STATUS_WAIT_S + 0.1)
        if not future.done() or future.cancelled():
            return None
        return future.result()  # or what settled it instead: the worker died, say (a 503)

    @staticmethod
    async def _await_answer(
        future: asyncio.Future[Answer], request_id: int, cancel_check: CancelCheck | None
    ) -> Answer:
        if cancel_check is None:
            return await asyncio.shield(future)
        while True:
            done, _ = await asyncio.wait({future}, timeout=CANCEL_POLL_S)
            if done:
                return future.result()
            if await _cancel_requested(cancel_check):
                raise MoltCancelled(
                    "the caller went away; the worker request was cancelled", request_id=request_id
                )

    def _withdraw(self, worker: _AsyncWorker, request_id: int) -> None:
        """Takes a call back from the reader; if it was still pending, cancels it in the
        worker. Idempotent: a call already answered or withdrawn is left alone."""
        if worker.pending.pop(request_id, None) is not None:
            self._cancel_in_worker(worker, request_id)

    def _cancel_in_worker(self, worker: _AsyncWorker, request_id: int) -> None:
        try:
            worker.send_now(encode_frame(encode_cancel(self.wire, request_id), self.max_frame_size))
        except MoltWorkerUnavailable:
            pass

    def _retire(self, worker: _AsyncWorker) -> None:
        """Replaces a stuck (or dead) worker; the old one is closed once its calls have
        drained."""
        if self._worker is worker:
            self._worker = None
        self._retired.add(worker)

        async def drain_then_close() -> None:
            while worker.pending and not worker.dead:
                await asyncio.sleep(0.05)
            await worker.close()
            self._retired.discard(worker)

        task = asyncio.get_running_loop().create_task(drain_then_close())
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)


def _reader_gone(stdin: asyncio.StreamWriter) -> bool:
    """Whether the worker's input takes no more frames: this side is closing it, or the
    worker's end is closed (it died). The latter is seen at once here: asyncio learns it a
    loop turn later, and its transport drops a write into such a pipe silently, so a call
    written in between would count as delivered and not be re-sent."""
    if stdin.is_closing():
        return True
    pipe = stdin.transport.get_extra_info("pipe")
    if pipe is None:
        return False
    poller = select.poll()
    try:
        poller.register(pipe.fileno(), select.POLLOUT)
    except (OSError, ValueError):  # closed meanwhile
        return True
    return any(events & select.POLLERR for _, events in poller.poll(0))


async def _cancel_requested(cancel_check: CancelCheck) -> bool:
    """Asks the check, awaiting it when it is async (ASGI's ``is_disconnected``). A check
    that raises is logged and counts as "not cancelled", as in ``MoltClient``: a bug in it
    must not fail the call it watches."""
    try:
        said = cancel_check()
        if inspect.isawaitable(said):
            said = await said
        return bool(said)
    except Exception:
        logger.exception("molt_accel cancel_check raised; treating it as not cancelled")
        return False
