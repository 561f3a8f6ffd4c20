"""The local backend: a study's jobs on this machine, a few at a time on each GPU (or CPU processes).

Each job is one `main.py` process with its own log (<study>/logs/<job>.log) and record
(<study>/jobs/<job>.json: state, pid, exit code, the failure's last line), so that `study.py status`
can read them from another shell. A job starts once the jobs it depends on succeeded; one that
failed cancels its dependants. Ctrl-C (or SIGTERM, SIGHUP) stops every running job (SIGTERM, then SIGKILL) and
records them as interrupted; running the study again resumes at the first unfinished round.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

import constants as C
from atomic_io import atomic_write_text
from parseit import work_root
from studies.plan import Job

POLL_S = 0.5
IGNORE_USR2_THEN_EXEC = "import os, signal, sys; signal.signal(signal.SIGUSR2, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])"
STOP_GRACE_S = 10.0
# Job states in the records.
PENDING, RUNNING, DONE, FAILED, CANCELLED, WAITING, INTERRUPTED = (
    "pending", "running", "done", "failed", "cancelled", "waiting for a person", "interrupted")


@dataclass(frozen=True)
class Slot:
    """Where a job runs: a GPU index (None: the CPU) and the threads it may use."""

    gpu: int | None
    threads: int

    def argv(self) -> list[str]:
        return [] if self.gpu is None else ["--device", "cuda", "--cudaid", str(self.gpu)]


def slots(gpus: int, per_gpu: int, jobs: int, cpus: int) -> list[Slot]:
    """per_gpu slots on each GPU, else `jobs` CPU slots sharing the cores."""
    if gpus > 0:
        count = gpus * per_gpu
        return [Slot(g, max(1, cpus // count)) for g in range(gpus) for _ in range(per_gpu)]
    return [Slot(None, max(1, cpus // jobs)) for _ in range(jobs)]


class StudyFolder:
    """<study>/logs/<job>.log and <study>/jobs/<job>.json."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def log(self, job: Job) -> Path:
        return self.root / "logs" / f"{job.name}.log"

    def record_path(self, job: Job) -> Path:
        return self.root / "jobs" / f"{job.name}.json"

    def record(self, job: Job) -> dict:
        try:
            return json.loads(self.record_path(job).read_text())
        except (OSError, ValueError):
            return {}

    def write(self, job: Job, **fields: object) -> None:
        path = self.record_path(job)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({**self.record(job), **fields}, indent=1) + "\n")


def last_line(log: Path) -> str:
    """The last non-empty line of a log: main.py's one-line error when it failed."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


class LocalRunner:
    def __init__(self, jobs: Sequence[Job], folder: StudyFolder, python: str, places: Sequence[Slot],
                 log: Callable[[str], None] = print) -> None:
        self.jobs, self.folder, self.python, self.free, self.say = list(jobs), folder, python, list(places), log
        self.state = {job.name: DONE if job.done else PENDING for job in self.jobs}
        self.running: dict[str, tuple[subprocess.Popen, Slot]] = {}
        # What an earlier run recorded no longer holds; inside a Slurm job, its id is the job's.
        for job in self.jobs:
            if self.state[job.name] == PENDING:
                self.folder.write(job, state=PENDING, pid=None, host=None, line="",
                                  slurm_id=os.environ.get("SLURM_JOB_ID"))

    def run(self) -> bool:
        """Every job to its end; True when none failed. However the runner stops (Ctrl-C, SIGTERM, SIGHUP, an
        error, a requeue), the running jobs are stopped first, and the exception goes on."""
        total = sum(job.rounds for job in self.jobs)
        with tqdm(total=total, desc="study rounds", unit="round", dynamic_ncols=True, disable=None) as bar, \
                _terminate_as_interrupt():
            try:
                while self._step():
                    self._show(bar)
                    time.sleep(POLL_S)
                self._show(bar)
            except BaseException:
                self._stop_all()
                raise
        return not any(state in (FAILED, CANCELLED, WAITING) for state in self.state.values())

    def _show(self, bar: tqdm) -> None:
        done = sum(job.rounds_done() for job in self.jobs)
        if done != bar.n:
            bar.update(done - bar.n)

    def _step(self) -> bool:
        """Reap finished jobs, cancel what can no longer run, start what can; False when nothing is left."""
        for name, (process, place) in list(self.running.items()):
            if process.poll() is not None:
                self._finished(self._job(name), process.returncode, place)
        for job in self.jobs:
            if self.state[job.name] == PENDING and any(self.state[a] in (FAILED, CANCELLED, WAITING)
                                                      for a in job.after):
                self.state[job.name] = CANCELLED
                self.folder.write(job, state=CANCELLED, line=f"cancelled: {', '.join(job.after)} did not succeed")
        for job in self.jobs:
            if self.free and self.state[job.name] == PENDING and all(self.state[a] == DONE for a in job.after):
                self._start(job, self.free.pop(0))
        return bool(self.running) or any(s == PENDING for s in self.state.values())

    def _job(self, name: str) -> Job:
        return next(job for job in self.jobs if job.name == name)

    def _start(self, job: Job, place: Slot) -> None:
        log = self.folder.log(job)
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(place.threads), "MKL_NUM_THREADS": str(place.threads)}
        with open(log, "ab") as out:
            process = subprocess.Popen([*self._launcher(), *job.args, *place.argv()], cwd=work_root(), env=env,
                                       stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.running[job.name] = (process, place)
        self.state[job.name] = RUNNING
        self.folder.write(job, state=RUNNING, pid=process.pid, host=socket.gethostname(), started=time.time(),
                          log=str(log), gpu=place.gpu, line="")

    def _launcher(self) -> list[str]:
        """The interpreter; inside a Slurm job, one that ignores Slurm's time-limit warning (SIGUSR2, meant for
        submitit, which requeues the chain) before it becomes main.py (an ignored signal stays so across exec)."""
        if not os.environ.get("SLURM_JOB_ID"):
            return [self.python]
        return [self.python, "-c", IGNORE_USR2_THEN_EXEC, self.python]

    def _finished(self, job: Job, code: int, place: Slot) -> None:
        del self.running[job.name]
        self.free.append(place)
        state = DONE if code == 0 else WAITING if code == C.EXIT_WAITING else FAILED
        self.state[job.name] = state
        line = "" if code == 0 else last_line(self.folder.log(job))
        self.folder.write(job, state=state, exit_code=code, ended=time.time(), line=line)
        if state != DONE:
            self.say(f"{job.name}: {state} (exit {code}): {line}")

    def _stop_all(self) -> None:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)   # a second Ctrl-C must not orphan the jobs
        try:
            self._stop_running()
        finally:
            signal.signal(signal.SIGINT, previous)

    def _stop_running(self) -> None:
        for process, _ in self.running.values():
            _signal(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for name, (process, _) in list(self.running.items()):
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal(process, signal.SIGKILL)
                process.wait()
            self.folder.write(self._job(name), state=INTERRUPTED, exit_code=process.returncode, ended=time.time())
        self.running.clear()


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP (a closed terminal) stop the runner as Ctrl-C does; inside Slurm, submitit's
    handlers are left alone."""
    if os.environ.get("SLURM_JOB_ID") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _signal(process: subprocess.Popen, sig: int) -> None:
    """The job's whole process group (main.py and anything it started)."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
