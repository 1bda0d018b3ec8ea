"""One running worker process: its pipes, its reader thread and the calls waiting on it."""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import threading
import time
from _thread import allocate_lock
from collections.abc import Mapping

from molt_accel.errors import MoltAccelError, MoltProtocolError, MoltTimeout, MoltWorkerUnavailable
from molt_accel.framing import (
    AnswerOverLimit,
    encode_frame,
    over_the_workers_limit,
    read_frame,
    refused_frame,
)
from molt_accel.wire import Answer, Wire, decode_answer, encode_cancel

logger = logging.getLogger("molt_accel")

# How long a closed worker gets to finish its in-flight work and exit before it is killed:
# longer than the worker's own shutdown grace (5 s) and the second it then keeps sending the
# answers it made, so that a worker stopping by itself is not killed just as it would exit.
EXIT_GRACE_S = 7.0
# How long a best-effort __cancel__ waits for a worker that reads nothing.
CANCEL_SEND_S = 0.1


def exit_was_a_crash(code: int | None) -> bool:
    """Whether a worker's exit status is a crash: a failure code or a signal other than the
    SIGKILL this client sends a worker that does not exit when asked."""
    return code is not None and code != 0 and code != -signal.SIGKILL


def start_failure(program: str, exc: OSError) -> MoltWorkerUnavailable:
    """Why a worker could not start, in terms a user can act on."""
    why = exc.strerror or str(exc)
    if isinstance(exc, FileNotFoundError) and "/" not in program:
        # A bare name is looked up on PATH only: not in the working folder, not in a venv.
        why = "no such program in any folder of PATH (a name without '/' is looked up there only)"
    return MoltWorkerUnavailable(f"cannot start the worker {program!r}: {why}")


class PendingCall:
    """A call waiting for its answer. The lock is held until the reader thread hands the
    answer over, so the caller blocks on one lock acquire: no polling, no condition."""

    __slots__ = ("answer", "cancel_sent", "error", "frame_length", "lock")

    def __init__(self) -> None:
        self.lock = allocate_lock()
        self.lock.acquire()
        self.answer: Answer | None = None
        self.error: MoltAccelError | None = None
        self.cancel_sent = False  # this client asked the worker to stop it
        self.frame_length = 0  # of its request frame's body, once encoded


class WorkerProcess:
    """Owns one ``molt-worker`` child.

    Calls register a ``PendingCall`` under their request id, then write their frame; the
    reader thread pops the pending call of each answer and releases it. Whoever pops a
    pending call (the reader, a timed-out caller, a failure) is the only one to settle it.
    """

    def __init__(
        self,
        worker_cmd: list[str],
        wire: Wire,
        max_frame_size: int,
        env: Mapping[str, str] | None,
        cwd: str | None,
    ) -> None:
        self.wire = wire
        self.max_frame_size = max_frame_size
        self.pending: dict[int, PendingCall] = {}
        self.dead = False
        self.death_reason = ""
        self._retiring = False
        # Guards writes to stdin and its closing: the raw fd number is cached, and once closed
        # it can be reused by any file this process opens, so no write may follow the close.
        self._write_lock = threading.Lock()
        self._input_closed = False
        self._reaper_lock = threading.Lock()
        self._reaper: threading.Thread | None = None  # one per worker, however often closed
        self._grace_s = EXIT_GRACE_S
        # Read by the restart backoff: a worker that dies young is not restarted at once.
        self.started_at = time.monotonic()
        self.died_at: float | None = None
        # A pipe worker serves its caller: a job runner's settings in the environment (a
        # shared env file) must not make it run jobs as well, or jobs only; the command's own
        # --jobs-... flags still do.
        child_env = {
            k: v for k, v in (os.environ if env is None else env).items() if not k.startswith("MOLT_JOBS_")
        }
        try:
            self.proc = subprocess.Popen(
                worker_cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=child_env,
                cwd=cwd,
                bufsize=0,
            )
        except OSError as exc:
            raise start_failure(worker_cmd[0], exc) from None
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._stdin_fd = self.proc.stdin.fileno()
        os.set_blocking(self._stdin_fd, False)  # writes wait in select(), within a deadline
        self._stdout = open(self.proc.stdout.fileno(), "rb", buffering=1 << 16, closefd=False)
        self._reader = threading.Thread(
            target=self._read_answers, name=f"molt-accel-reader-{self.proc.pid}", daemon=True
        )
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def replaced(self) -> bool:
        """Retired or closed by the client: it takes no new call, dead or alive."""
        return self._retiring or self._input_closed

    # -- sending ---------------------------------------------------------------------------

    def send(self, frame: bytes, deadline: float | None = None) -> None:
        """Writes one whole frame; frames from several threads never interleave.

        With a ``deadline`` (``time.monotonic()``), a worker that does not take the frame by
        then (stopped, hung: its input pipe stays full) raises ``MoltTimeout``, also for a
        caller waiting behind another writer. Nothing of the frame went out, unless the worker
        took part of it: then it is killed, since any next frame would follow half of this
        one."""
        view = memoryview(frame)
        wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._write_lock.acquire(timeout=wait):
            raise MoltTimeout("the worker did not take the request in time: it reads nothing")
        try:
            if self._input_closed:
                # Nothing of this frame was written: the caller may send it elsewhere.
                raise MoltWorkerUnavailable(self.death_reason or "the worker's input is closed")
            while view:
                try:
                    view = view[os.write(self._stdin_fd, view) :]
                    continue
                except BlockingIOError:
                    pass  # the pipe is full: wait until the worker reads
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    if len(view) < len(frame):
                        self._mark_dead("the worker stopped reading in the middle of a request")
                        self.kill()
                    raise MoltTimeout("the worker did not take the request in time: it reads nothing")
                select.select([], [self._stdin_fd], [], remaining)
        except OSError as exc:
            # A worker that exited closed its pipe: its reader, which sees the exit code,
            # tells why in a moment ("worker exited with code 2" says more than EPIPE).
            if self._reader is not threading.current_thread():
                self._reader.join(timeout=0.5)
            self._mark_dead(f"writing to the worker failed: {exc.strerror or exc}")
            raise MoltWorkerUnavailable(self.death_reason) from None
        finally:
            self._write_lock.release()

    def send_cancel(self, request_id: int) -> None:
        """Best effort: asks the worker to stop ``request_id``; a dead pipe, or one that stays
        full for CANCEL_SEND_S, is given up on."""
        try:
            self.send(
                encode_frame(encode_cancel(self.wire, request_id), self.max_frame_size),
                time.monotonic() + CANCEL_SEND_S,
            )
        except (MoltWorkerUnavailable, MoltTimeout):
            pass

    # -- pending calls ---------------------------------------------------------------------

    def register(self, request_id: int, call: PendingCall) -> None:
        """Adds a call about to be sent. A retiring or closed worker takes no new call: the
        caller gets ``MoltWorkerUnavailable`` before anything was sent, and goes elsewhere."""
        if self.replaced:
            raise MoltWorkerUnavailable("the worker is being replaced")
        self.pending[request_id] = call
        # The reader sets `dead` before it fails what is pending; checking after inserting
        # means a call is either failed by the reader or sees `dead` here, never neither.
        if self.dead and self.pending.pop(request_id, None) is not None:
            raise MoltWorkerUnavailable(self.death_reason)

    def abandon(self, request_id: int, cancel: bool = False) -> bool:
        """Takes a call back from the reader (timeout, cancel); False if its answer won.

        With ``cancel``, ``__cancel__`` is sent first, while the call still counts as pending:
        the last call of a retiring worker closes its input, so a cancel sent after the
        abandon would never reach it. A cancel that crosses the answer is ignored by the
        worker."""
        call = self.pending.get(request_id)
        if cancel and call is not None:
            call.cancel_sent = True
            self.send_cancel(request_id)
        taken = self.pending.pop(request_id, None) is not None
        if taken and self._retiring and not self.pending:
            self.close()
        return taken

    # -- lifecycle -------------------------------------------------------------------------

    def retire(self) -> None:
        """Stops taking new calls; closes once the calls still in flight have drained."""
        self._retiring = True
        if not self.pending:
            self.close()

    def close(self, wait: bool = False, grace_s: float = EXIT_GRACE_S) -> None:
        """Closes the worker's input: it finishes or cancels what it has and exits. A worker
        that has not exited after ``grace_s`` is killed.

        Sends are refused from now on. The input itself is closed by the reaping step (here
        with ``wait``, else on a reaper thread), which may have to wait for a writer."""
        self._grace_s = grace_s
        # Set without the write lock: a writer blocked in os.write on a worker that reads
        # nothing holds it, and close() must not wait for it. send() checks the flag under
        # the lock, so no frame starts after this, and none is written after the fd closes.
        self._input_closed = True
        if wait:
            self._close_input_and_reap()
            return
        with self._reaper_lock:  # retire, abandon and a last answer may each get here
            if self._reaper is not None:
                return
            self._reaper = threading.Thread(
                target=self._close_input_and_reap, name=f"molt-accel-reap-{self.pid}", daemon=True
            )
        try:
            self._reaper.start()
        except RuntimeError:  # no thread to be had: a later close tries again
            self._reaper = None
            raise

    def wait_closed(self) -> None:
        """After ``close()``: waits until the worker has exited (and was reaped)."""
        reaper = self._reaper
        if reaper is not None:
            reaper.join()
        else:
            self._reap()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()

    def forget_after_fork(self) -> None:
        """In a forked child: drop the inherited pipes without touching the parent's worker."""
        # A lock held by a parent thread at fork time would stay held forever in the child.
        self._write_lock = threading.Lock()
        self._input_closed = True
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        self.dead = True
        self.death_reason = "worker belongs to the parent process"

    def _close_input_and_reap(self) -> None:
        """Closes stdin once no frame is being written, then waits for the worker to exit.

        A writer that keeps the write lock past the grace period is blocked on a full pipe:
        the worker reads nothing (hung, stopped). Killing it breaks the pipe, so the write
        fails with EPIPE and lets go of the lock; the fd is never closed under a writer."""
        if not self._write_lock.acquire(timeout=self._grace_s):
            logger.warning(
                "molt-worker %d did not read its input in %.1f s; killing it", self.pid, self._grace_s
            )
            self.kill()
            self._write_lock.acquire()
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        finally:
            self._write_lock.release()
        self._reap()

    def _reap(self) -> None:
        try:
            self.proc.wait(timeout=self._grace_s)
        except subprocess.TimeoutExpired:
            logger.warning("molt-worker %d did not exit in %.1f s; killing it", self.pid, self._grace_s)
            self.proc.kill()
            self.proc.wait()

    # -- the reader thread -----------------------------------------------------------------

    def _read_answers(self) -> None:
        reason = "worker closed its output"
        killed_here = False
        try:
            while True:
                try:
                    body = read_frame(self._stdout, self.max_frame_size)
                except AnswerOverLimit as over:
                    self._settle(over.request_id, error=over)
                    continue
                if body is None:
                    break
                answer = decode_answer(body)
                if answer.entry == "__cancel__":
                    continue  # the acknowledgement of a cancel, not request N's answer
                if refused := refused_frame(answer.request_id, answer.error):
                    self._settle_refused(*refused)
                    continue
                self._settle(answer.request_id, answer=answer)
        except MoltProtocolError as exc:
            reason = f"worker broke the protocol: {exc}"
            killed_here = True
            self.kill()
        except (OSError, ValueError) as exc:
            reason = f"reading from the worker failed: {exc}"
        code = self.proc.poll()
        if code is None:
            try:
                code = self.proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                code = None
        if code is not None and code != 0 and not killed_here:  # a kill by this client is not the reason
            reason = f"worker exited with code {code}" if code > 0 else f"worker killed by signal {-code}"
        self._mark_dead(reason, crashed=exit_was_a_crash(code))
        # Nothing reads the pipe any more: it goes now, not when the collector finds this
        # object (the restart backoff keeps the last worker for its timing).
        for stream in (self._stdout, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except (OSError, ValueError):
                pass

    def _settle(
        self, request_id: int, *, answer: Answer | None = None, error: MoltAccelError | None = None
    ) -> None:
        call = self.pending.pop(request_id, None)
        if call is None:
            return  # a call that timed out or was cancelled meanwhile
        call.answer = answer
        call.error = error
        call.lock.release()
        if self._retiring and not self.pending:
            self.close()

    def _settle_refused(self, length: int, limit: int) -> None:
        """Fails the oldest pending call whose frame had the refused length (without it, the
        call waited for its timeout, or for ever without one)."""
        for request_id, call in list(self.pending.items()):
            if call.frame_length == length:
                self._settle(request_id, error=over_the_workers_limit(length, limit, request_id))
                return

    def _mark_dead(self, reason: str, crashed: bool = False) -> None:
        if not self.dead:
            self.death_reason = reason
            # An exit this client asked for (its input closed) is no early death; a crash is.
            if not self._input_closed or crashed:
                self.died_at = time.monotonic()
            self.dead = True
        for request_id in list(self.pending):
            call = self.pending.pop(request_id, None)
            if call is not None:
                call.error = MoltWorkerUnavailable(self.death_reason, request_id=request_id)
                call.lock.release()
