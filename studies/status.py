"""`study.py status`: every job of a study, its rounds done, its state and, when it failed, why."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence

from studies.local import CANCELLED, DONE, FAILED, PENDING, RUNNING, StudyFolder
from studies.plan import Job
from studies.slurm import SLURM_STATES, SUBMITTED, slurm_state

STOPPED = "stopped"   # recorded as running, but its process (or Slurm job) is gone


def _alive(pid: object) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def job_state(job: Job, folder: StudyFolder) -> tuple[str, str]:
    """(state, the failure's line) from the rounds on disk and the job's record."""
    if job.done:
        return DONE, ""
    record = folder.record(job)
    state, line = record.get("state", PENDING), record.get("line", "")
    if record.get("slurm_id") and state in (SUBMITTED, RUNNING):   # Slurm knows best where it runs
        known = slurm_state(record["slurm_id"])
        if known is not None:
            state = SLURM_STATES.get(known, known.lower())
            line = line or (f"Slurm job {record['slurm_id']} {known}" if state in (CANCELLED, FAILED) else "")
        elif state == RUNNING:
            state = STOPPED
    elif state == RUNNING and record.get("host") in (None, socket.gethostname()) and not _alive(record.get("pid")):
        state = STOPPED
    return state, line


def status_table(jobs: Sequence[Job], folder: StudyFolder) -> str:
    """One line per job and a summary; the failure's line under a job that did not succeed."""
    rows, counts = [], {}
    for job in jobs:
        state, line = job_state(job, folder)
        counts[state] = counts.get(state, 0) + 1
        rows.append(f"{job.name:<42} {job.rounds_done():>3}/{job.rounds:<3} {state:<21} {folder.log(job)}")
        if line and state != DONE:
            rows.append(f"    {line}")
    done = sum(job.rounds_done() for job in jobs)
    total = sum(job.rounds for job in jobs)
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    header = f"{'job':<42} {'rounds':<7} {'state':<21} log"
    return "\n".join([header, *rows, f"{len(jobs)} jobs: {summary}; {done}/{total} rounds done"])
