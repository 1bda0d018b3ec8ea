"""Settings read from the environment, the default worker command and the exports manifest."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sysconfig
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from molt_accel.errors import MoltWorkerUnavailable
from molt_accel.framing import DEFAULT_MAX_FRAME_SIZE
from molt_accel.retry import MAX_BACKOFF_MS, CallAttempts
from molt_accel.wire import resolve_wire

WORKER_BINARY = "molt-worker"


def env_flag(name: str, default: bool = False, env: Mapping[str, str] | None = None) -> bool:
    """A boolean setting: 1/true/yes/on or 0/false/no/off; anything else is an error."""
    raw = (env if env is not None else os.environ).get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(
    name: str,
    default: int,
    minimum: int = 0,
    env: Mapping[str, str] | None = None,
    maximum: int | None = None,
) -> int:
    """An integer setting from ``minimum`` to ``maximum``; anything else is an error naming it."""
    raw = (env if env is not None else os.environ).get(name, "").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value}")
    return value


# Worker processes per gunicorn process: more would only take memory and file descriptors.
MAX_POOL_SIZE = 1024


@dataclass(frozen=True)
class RetryPolicy:
    """When a call is tried again: after ``Busy`` (nothing ran), after a timeout (only for
    idempotent calls), with an exponential backoff between attempts."""

    on_timeout: bool = False
    on_busy: bool = False
    backoff_ms: int = 0
    backoff_max_ms: int = 0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        return cls(
            on_timeout=env_flag("MOLT_ACCEL_RETRY_ON_TIMEOUT"),
            on_busy=env_flag("MOLT_ACCEL_RETRY_ON_BUSY"),
            backoff_ms=env_int("MOLT_ACCEL_RETRY_BACKOFF_MS", 0, maximum=MAX_BACKOFF_MS),
            backoff_max_ms=env_int("MOLT_ACCEL_RETRY_BACKOFF_MAX_MS", 0, maximum=MAX_BACKOFF_MS),
        )


def client_mode_from_env() -> str:
    mode = os.environ.get("MOLT_ACCEL_CLIENT_MODE", "").strip().lower() or "shared"
    if mode not in ("shared", "per_request"):
        raise ValueError(f"MOLT_ACCEL_CLIENT_MODE must be 'shared' or 'per_request', got {mode!r}")
    return mode


def pool_size_from_env() -> int:
    return env_int("MOLT_ACCEL_POOL_SIZE", 1, minimum=1, maximum=MAX_POOL_SIZE)


def busy_status_from_env() -> int:
    """429 by default; ``MOLT_ACCEL_BUSY_STATUS=503`` for proxies that retry on 503."""
    raw = os.environ.get("MOLT_ACCEL_BUSY_STATUS", "").strip() or "429"
    if raw not in ("429", "503"):
        raise ValueError(f"MOLT_ACCEL_BUSY_STATUS must be 429 or 503, got {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class OffloadSettings:
    """The ``MOLT_ACCEL_*`` settings of a decorated view. They are read once, when the view
    is decorated, so that a malformed value stops the server at startup instead of turning
    every request into a 500."""

    retry: RetryPolicy
    pool_size: int
    busy_status: int
    debug_errors: bool

    @classmethod
    def from_env(cls) -> OffloadSettings:
        return cls(
            retry=RetryPolicy.from_env(),
            pool_size=pool_size_from_env(),
            busy_status=busy_status_from_env(),
            debug_errors=env_flag("MOLT_ACCEL_DEBUG_ERRORS"),
        )


def packaged_manifest_path() -> Path:
    """The exports manifest shipped inside the package (the stock worker's exports)."""
    return Path(str(files("molt_accel").joinpath("default_exports.json")))


def find_worker_binary() -> str | None:
    """``molt-worker`` on PATH, or in this interpreter's scripts folder (where
    ``pip install .[accel]`` puts it, even when the virtualenv is not activated)."""
    found = shutil.which(WORKER_BINARY)
    if found:
        return found
    candidate = Path(sysconfig.get_path("scripts")) / WORKER_BINARY
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None


def default_worker_cmd() -> list[str]:
    """``MOLT_WORKER_CMD`` split like a shell would, else the installed ``molt-worker`` with
    the packaged manifest."""
    configured = os.environ.get("MOLT_WORKER_CMD", "").strip()
    if configured:
        return shlex.split(configured)
    binary = find_worker_binary()
    if binary is None:
        raise MoltWorkerUnavailable(
            "MOLT_WORKER_CMD is not set and molt-worker is not installed "
            "(pip install .[accel], or set MOLT_WORKER_CMD)"
        )
    return [binary, "--stdio", "--exports", str(packaged_manifest_path())]


@dataclass(frozen=True)
class ExportSpec:
    name: str
    codec_in: str
    codec_out: str


def _exports_flag(worker_cmd: list[str]) -> str | None:
    for index, arg in enumerate(worker_cmd):
        if arg == "--exports" and index + 1 < len(worker_cmd):
            return worker_cmd[index + 1]
        if arg.startswith("--exports="):
            return arg.split("=", 1)[1]
    return None


def parse_manifest(text: str, origin: str) -> dict[str, ExportSpec]:
    try:
        document = json.loads(text)
        exports = {
            item["name"]: ExportSpec(item["name"], item["codec_in"], item["codec_out"])
            for item in document["exports"]
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"exports manifest {origin} is malformed: {exc}") from None
    return exports


def load_manifest(
    worker_cmd: list[str], env: Mapping[str, str] | None = None, cwd: str | None = None
) -> dict[str, ExportSpec]:
    """The exports the worker started by ``worker_cmd`` will serve: its ``--exports`` file,
    else ``MOLT_WORKER_EXPORTS``, else what the whole command prints with ``--print-exports``
    appended. The command runs either way, so that a setting it refuses (a bad
    ``MOLT_WORKER_THREADS``) fails here, at startup, and not at every request."""
    environment = dict(os.environ if env is None else env)
    printed = _print_exports(worker_cmd, environment, cwd)
    path = _exports_flag(worker_cmd) or environment.get("MOLT_WORKER_EXPORTS")
    if path:
        resolved = Path(cwd, path) if cwd else Path(path)
        try:
            return parse_manifest(resolved.read_text(), str(resolved))
        except OSError as exc:
            raise ValueError(f"cannot read exports manifest {resolved}: {exc.strerror}") from None
    return parse_manifest(printed, f"printed by {shlex.join(worker_cmd)}")


_DATABASE_TARGETS = ("MOLT_DB_SQLITE_PATH", "MOLT_DB_POSTGRES_DSN")

# What each worker command printed, so that views decorated alike start it once.
_printed_exports: dict[tuple[object, ...], str] = {}
_STDERR_SHOWN = 2000


def _print_exports(worker_cmd: list[str], environment: dict[str, str], cwd: str | None) -> str:
    # The manifest does not depend on the databases; a worker asked only for it must not
    # fail because one is not there yet (it opens a SQLite file at start). Their other
    # settings (MOLT_DB_POOL_SIZE, ...) stay, to be checked.
    environment = {k: v for k, v in environment.items() if k not in _DATABASE_TARGETS}
    key = (tuple(worker_cmd), cwd or os.getcwd(), tuple(sorted(environment.items())))
    if key in _printed_exports:
        return _printed_exports[key]
    # Messages name the whole command that ran: with a wrapper, its first word says little.
    command = shlex.join(worker_cmd)
    try:
        listed = subprocess.run(
            # The whole command, not just its first word: a wrapper (`nice -n 5 molt-worker`)
            # must run the worker, and the worker's own flags may come with the question.
            [*worker_cmd, "--print-exports"],
            capture_output=True,
            timeout=10,
            check=True,
            env=environment,
            cwd=cwd,
        )
    except subprocess.CalledProcessError as exc:
        # All of what it said: the line that names the bad setting is seldom the last.
        said = exc.stderr.decode(errors="replace").strip()[-_STDERR_SHOWN:]
        raise MoltWorkerUnavailable(
            f"{command} --print-exports failed with code {exc.returncode}" + (f": {said}" if said else "")
        ) from None
    except (OSError, subprocess.SubprocessError) as exc:
        raise MoltWorkerUnavailable(f"cannot ask {command} for its exports: {exc}") from None
    printed = _printed_exports[key] = listed.stdout.decode()
    return printed


def worker_frame_limit(worker_cmd: list[str], env: Mapping[str, str] | None) -> int:
    """The frame limit the worker will run with: its ``--max-frame-size`` flag, else
    ``MOLT_WORKER_MAX_FRAME_SIZE`` in the environment it gets, else the default. The client
    holds itself to the same limit: a larger request would be refused by the worker without
    a request id to answer to, and a larger answer would be refused here."""
    for i, arg in enumerate(worker_cmd):
        if arg == "--max-frame-size" and i + 1 < len(worker_cmd):
            given: str | None = worker_cmd[i + 1]
            break
        if arg.startswith("--max-frame-size="):
            given = arg.partition("=")[2]
            break
    else:
        given = (env if env is not None else os.environ).get("MOLT_WORKER_MAX_FRAME_SIZE")
    try:
        return int(given) if given else DEFAULT_MAX_FRAME_SIZE
    except ValueError:
        return DEFAULT_MAX_FRAME_SIZE  # the worker refuses to start, and says why


# A day. A longer deadline is a mistake, and the waits of `threading` refuse huge ones.
MAX_TIMEOUT_MS = 86_400_000


def check_timeout_ms(timeout_ms: object) -> None:
    """Refuses a ``timeout_ms`` that is not whole milliseconds from 0 (no deadline) to a day."""
    if (
        not isinstance(timeout_ms, int)
        or isinstance(timeout_ms, bool)
        or not 0 <= timeout_ms <= MAX_TIMEOUT_MS
    ):
        raise ValueError(
            f"timeout_ms takes whole milliseconds from 0 (no deadline) to {MAX_TIMEOUT_MS}, "
            f"got {timeout_ms!r}"
        )


# Every client alive in this process, for the child of a fork to let go of their workers.
_live_clients: weakref.WeakSet[WorkerSettings] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for client in list(_live_clients):
        client._forget_worker_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class WorkerSettings:
    """What MoltClient and AsyncMoltClient share: the worker command and how to talk to it,
    the restart policy, and the exports manifest (asked of the worker command without
    starting a worker to serve)."""

    def __init__(
        self,
        worker_cmd: list[str] | None = None,
        wire: str | None = None,
        max_frame_size: int | None = None,
        restart_on_failure: bool = True,
        max_restarts: int = 1,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        self.worker_cmd = list(worker_cmd) if worker_cmd else default_worker_cmd()
        self.wire = resolve_wire(wire)
        self.env = dict(env) if env is not None else None
        self.max_frame_size = (
            max_frame_size if max_frame_size is not None else worker_frame_limit(self.worker_cmd, self.env)
        )
        self.restart_on_failure = restart_on_failure
        self.max_restarts = max(0, max_restarts)
        self.cwd = cwd
        self._exports: dict[str, ExportSpec] | None = None
        self._init_client()
        _live_clients.add(self)

    def _init_client(self) -> None:
        """The client's own state, set up at the end of ``__init__``."""

    def _forget_worker_after_fork(self) -> None:
        """In a forked child: let go of the parent's worker, so that the child starts its own
        (a client built before a server forks, gunicorn's --preload)."""

    def _call_attempts(
        self,
        idempotent: bool,
        retry_on_busy: bool,
        retry_on_timeout: bool,
        backoff_ms: int,
        backoff_max_ms: int,
    ) -> CallAttempts:
        """The retry state of one call: its options, with this client's restart policy."""
        for name, value in (("retry_backoff_ms", backoff_ms), ("retry_backoff_max_ms", backoff_max_ms)):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_BACKOFF_MS:
                raise ValueError(f"{name} takes whole milliseconds from 0 to {MAX_BACKOFF_MS}, got {value!r}")
        return CallAttempts(
            idempotent=idempotent,
            restart_on_failure=self.restart_on_failure,
            max_restarts=self.max_restarts,
            retry_on_busy=retry_on_busy,
            retry_on_timeout=retry_on_timeout,
            backoff_ms=backoff_ms,
            backoff_max_ms=backoff_max_ms,
        )

    def exports(self) -> dict[str, ExportSpec]:
        """The worker's exports manifest (``load_manifest``): the command runs once with
        ``--print-exports``, which checks its settings, and no worker starts to serve."""
        if self._exports is None:
            self._exports = load_manifest(self.worker_cmd, self.env, self.cwd)
        return self._exports
