"""A full disk under a run: told apart from every other failure, so that the command stops with a
message that says what happened and how to go on (its store keeps every evaluation recorded before:
--resume continues), not with a traceback from deep in SQLite or a file write."""
from __future__ import annotations

import errno
import sqlite3

from ..model.candidate import DISK_FULL_NOTE, Evaluation

# exit status of a run stopped by a full disk: sysexits' EX_TEMPFAIL (free space, then try again)
EXIT_DISK_FULL = 75


class DiskFull(OSError):
    """An evaluator's disk is full (the evaluation that found it is not recorded: --resume redoes it)."""


def is_disk_full(e: BaseException) -> bool:
    """An OSError for no space or an exceeded quota, or SQLite's own word for it."""
    if isinstance(e, OSError):
        return e.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(e, sqlite3.Error):
        return "disk is full" in str(e) or getattr(e, "sqlite_errorcode", None) == 13  # SQLITE_FULL
    return False


def disk_full_message(e: BaseException, run_dir: object, command: str) -> str:
    """What a user reads: which file could not be written (where the error says), where the run's
    records are, and the command that continues it."""
    where = f" writing {e.filename}" if isinstance(e, OSError) and e.filename else ""
    return (f"no space left on the disk{where} ({e}): every evaluation recorded before it is in "
            f"{run_dir}/store.sqlite; free space, then continue with `{command} --resume --run-dir {run_dir}`")


def check_evaluation(ev: Evaluation, where: str) -> None:
    """Raise DiskFull where an evaluation's evaluator found its disk short of space after it failed:
    a candidate is not charged with the disk's failure."""
    for note in ev.notes:
        if note.startswith(DISK_FULL_NOTE):
            raise DiskFull(errno.ENOSPC, f"the evaluator on {where} is out of disk space: {note[len(DISK_FULL_NOTE):]} "
                                         f"(an evaluation failed there: {ev.status}: {ev.reason[:200]})")
