"""The one exception hierarchy of dtctl.

Every error a user can meet derives from :class:`DtctlError` and carries the exit code the CLI
uses for it, so the CLI needs a single ``except DtctlError`` boundary. Database driver
errors never escape the hub: each backend translates them into these types at its edge.
"""

from __future__ import annotations


class ExitCode:
    OK = 0
    INTERNAL = 1
    USAGE = 2
    NOT_FOUND = 3
    CONFLICT = 4
    FAILED_INSTANCE = 5
    TIMEOUT = 6
    SCHEMA_MISMATCH = 7
    HUB_UNSAFE = 8
    DISK_FULL = 9
    READ_ONLY = 10


class DtctlError(Exception):
    """Base of every error dtctl raises on purpose."""

    exit_code: int = ExitCode.INTERNAL
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint


# --- usage and input -------------------------------------------------------------------------


class UsageError(DtctlError):
    """Bad input from the caller: malformed JSON, an unknown option value, a bad app path."""

    exit_code = ExitCode.USAGE


class PayloadError(DtctlError):
    """A payload that cannot be encoded as JSON, is too large, or cannot be decoded."""

    exit_code = ExitCode.CONFLICT


class RegistrationError(DtctlError):
    """An orchestrator or activity that cannot be registered (duplicate name, lambda, not callable)."""

    exit_code = ExitCode.USAGE


class InvalidName(UsageError):
    """An instance id or an orchestration, activity or event name that breaks the rules of
    :mod:`dtctl.core.names` (empty, too long, a control character, a reserved character)."""


class AppLoadError(UsageError):
    """An app path (``module:attr`` or ``file.py:attr``) that does not import or is not a dtctl App."""


# --- instances ---------------------------------------------------------------------------------


class InstanceNotFound(DtctlError):
    exit_code = ExitCode.NOT_FOUND


class InstanceAlreadyExists(DtctlError):
    exit_code = ExitCode.CONFLICT


class InvalidState(DtctlError):
    """The instance is in a state that refuses the operation (an event to a completed instance)."""

    exit_code = ExitCode.CONFLICT


class InstanceFailed(DtctlError):
    """``--wait`` saw the instance end FAILED or TERMINATED."""

    exit_code = ExitCode.FAILED_INSTANCE


class WaitTimeout(DtctlError):
    exit_code = ExitCode.TIMEOUT


class ServeUnreachable(DtctlError):
    """``dtctl serve --status`` found no serve answering at the address (or it refused the call)."""

    exit_code = ExitCode.NOT_FOUND


# --- the hub ---------------------------------------------------------------------------------------


class HubError(DtctlError):
    """Base of storage-level errors."""

    exit_code = ExitCode.INTERNAL


class HubNotFound(HubError):
    exit_code = ExitCode.NOT_FOUND
    hint = "create it with `dtctl init` or point --hub / DTCTL_HUB at an existing hub"


class HubBusy(HubError):
    """The hub stayed locked by another writer for longer than the busy timeout."""

    exit_code = ExitCode.TIMEOUT
    # The busy timeout is not a knob: a writer holds the lock for milliseconds, so a wait this long
    # means a writer that stopped inside its transaction (SIGSTOP, a debugger) or a long bulk write.
    hint = (
        "retry; if it keeps happening, a process is holding the hub's write lock "
        "(a stopped or debugged worker, a long purge): `dtctl doctor` and `dtctl workers` show it"
    )


class HubDiskFull(HubError):
    """The hub's disk (or the PostgreSQL server's) is full: nothing of the failed write was kept."""

    exit_code = ExitCode.DISK_FULL
    hint = (
        "free some space on the hub's file system (about 1 MB lets the hub recover); "
        "workers wait and carry on by themselves; `dtctl doctor` shows the free space"
    )


class HubReadOnly(HubError):
    """The hub can be read but never written from here (read-only mount or file, no -wal/-shm)."""

    exit_code = ExitCode.READ_ONLY
    hint = "reading commands work; run writers where the hub's file system is mounted read-write"


class HubUnsafe(HubError):
    """The hub is corrupt, not a hub, on a network file system, or has unsafe permissions."""

    exit_code = ExitCode.HUB_UNSAFE


class SchemaVersionMismatch(HubError):
    exit_code = ExitCode.SCHEMA_MISMATCH


class LeaseLost(HubError):
    """A commit carried a lease token that is no longer current: someone else owns the work now.

    Nothing was written. The caller drops the work item; the new owner carries on.
    """

    exit_code = ExitCode.CONFLICT


# --- orchestration semantics (raised inside user code or replay) -------------------------------------


class NonDeterminismError(DtctlError):
    """The orchestrator code no longer produces the actions its history recorded."""

    exit_code = ExitCode.CONFLICT


class OrchestrationStateError(DtctlError):
    """The orchestrator used its context in a way that is not allowed (e.g. after completing)."""

    exit_code = ExitCode.CONFLICT
