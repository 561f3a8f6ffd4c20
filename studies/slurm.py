"""The Slurm backend: the study's chains submitted with submitit, WSL first, the rest after it.

Each Slurm job runs `per_job` chains at once on its allocation (one GPU, or CPUs only) with the
local backend's runner, so a job's chains share its GPU as --per_gpu does locally. The jobs of a
seed's stage-2 methods wait for the Slurm job that holds its WSL chain (`afterok`), and are
cancelled if it fails (`kill-on-invalid-dep`). A job that reaches its time limit or is preempted is
requeued by submitit (Chains is Checkpointable; MAX_REQUEUES times at most) and main.py resumes at the
first unfinished round; the chains ignore Slurm's time-limit warning, which is submitit's.
Logs: the chains' own logs as locally, and submitit's in <study>/slurm/.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import submitit

from studies.local import CANCELLED, FAILED, PENDING, RUNNING, LocalRunner, Slot, StudyFolder
from studies.plan import Job

SUBMITTED = "submitted"
# Slurm job states and what status says of a chain whose rounds are not all done.
SLURM_STATES = {"PENDING": PENDING, "CONFIGURING": RUNNING, "RUNNING": RUNNING, "COMPLETING": RUNNING,
                "REQUEUED": PENDING, "CANCELLED": CANCELLED, "FAILED": FAILED, "TIMEOUT": FAILED,
                "NODE_FAIL": FAILED, "OUT_OF_MEMORY": FAILED, "PREEMPTED": PENDING, "COMPLETED": FAILED}


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None
    account: str | None
    time_min: int
    gpus: int            # GPUs per Slurm job (0: CPU only)
    cpus: int            # CPUs per Slurm job
    per_job: int         # chains per Slurm job


class Chains(submitit.helpers.Checkpointable):
    """Some chains of a study, run at once inside one Slurm job; requeued as they are on a time limit."""

    def __init__(self, jobs: Sequence[Job], root: Path, python: str, gpus: int, cpus: int) -> None:
        # Slurm started this job after its dependencies succeeded (afterok).
        self.jobs = [dataclasses.replace(job, after=()) for job in jobs]
        self.root, self.python, self.gpus, self.cpus = root, python, gpus, cpus

    def __call__(self) -> None:
        threads = max(1, self.cpus // len(self.jobs))
        places = [Slot(k % self.gpus if self.gpus else None, threads) for k in range(len(self.jobs))]
        if not LocalRunner(self.jobs, StudyFolder(self.root), self.python, places).run():
            raise RuntimeError(f"a chain failed: python study.py status, or the logs in {self.root / 'logs'}")


class SlurmError(RuntimeError):
    """sbatch refused a job (one line; the chains submitted before it stay queued)."""


ACTIVE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "SUSPENDED")
MAX_REQUEUES = 1000   # a chain at its time limit is requeued until it finishes


def _groups(jobs: Sequence[Job], per_job: int, awaited: set[str]) -> list[list[Job]]:
    """A chain others wait for runs alone (its failure must cancel its own dependants only); the others go
    per_job to a Slurm job, among chains that wait for the same ones."""
    alone = [[job] for job in jobs if job.name in awaited]
    by_after: dict[tuple[str, ...], list[Job]] = {}
    for job in jobs:
        if job.name not in awaited:
            by_after.setdefault(job.after, []).append(job)
    return alone + [chains[k:k + per_job] for chains in by_after.values() for k in range(0, len(chains), per_job)]


def submit(jobs: Sequence[Job], folder: StudyFolder, python: str, options: SlurmOptions) -> list[str]:
    """Submit every chain that is neither finished nor already queued; the new Slurm job ids, WSL's first."""
    executor = submitit.AutoExecutor(folder=folder.root / "slurm", cluster="slurm",
                                     slurm_max_num_timeout=MAX_REQUEUES)
    holder: dict[str, str] = {}
    for job in jobs:   # queued or running from an earlier submission: not again, but still waited for
        slurm_id = folder.record(job).get("slurm_id")
        if not job.done and slurm_id and slurm_state(slurm_id) in ACTIVE:
            holder[job.name] = slurm_id
    todo = [job for job in jobs if not job.done and job.name not in holder]
    awaited = {a for job in todo for a in job.after}
    ids = []
    for group in _groups(todo, options.per_job, awaited):
        waits = sorted({holder[a] for job in group for a in job.after if a in holder})
        extra = {"dependency": "afterok:" + ":".join(waits), "kill-on-invalid-dep": "yes"} if waits else {}
        executor.update_parameters(slurm_partition=options.partition, slurm_account=options.account,
                                   timeout_min=options.time_min, gpus_per_node=options.gpus or None,
                                   cpus_per_task=options.cpus, name=group[0].name,
                                   slurm_additional_parameters=extra)
        try:
            slurm_job = executor.submit(Chains(group, folder.root, python, options.gpus, options.cpus))
        except (subprocess.CalledProcessError, OSError, RuntimeError) as error:
            raise SlurmError(f"sbatch refused {group[0].name} ({str(error).strip().splitlines()[-1][:200]}): check "
                             f"--partition, --account, --gpus_per_job and --time_min; {len(ids)} Slurm jobs were "
                             "submitted, and submitting again adds only the missing ones") from None
        for job in group:
            holder[job.name] = slurm_job.job_id
            folder.write(job, state=SUBMITTED, slurm_id=slurm_job.job_id, line="", pid=None, host=None)
        ids.append(slurm_job.job_id)
    return ids


def slurm_state(job_id: str) -> str | None:
    """The Slurm job's state (squeue, then scontrol for a finished one); None when Slurm does not know it."""
    for command in (["squeue", "-h", "-j", job_id, "-o", "%T"], ["scontrol", "-o", "show", "job", job_id]):
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return None
        if command[0] == "squeue" and out:
            return out.split()[0]
        if command[0] == "scontrol" and "JobState=" in out:
            return out.split("JobState=")[1].split()[0]
    return None
