"""A study as jobs: one job per (dataset, method, seed) chain of rounds, after that seed's WSL job.

A job is one `main.py` call over its rounds (--al_it 0 --al_it_end R-1); main.py skips finished
rounds, so running a study again resumes it. Stage-2 methods of the joint task wait for the WSL
job of their (dataset, seed), which writes theta0; the other tasks have no stage 1. The expansion
and its checks are gen_configs.py's, so a study and the generated scripts run the same calls.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import constants as C
from al.state import STATE_FILE, run_dir, theta0_path
from gen_configs import check_selection, exp_id, resolve, round_args, study_rounds
from parseit import script_path


@dataclass(frozen=True)
class Job:
    name: str                   # <dataset>-<run id>, also the name of its log
    dataset: str
    method: str
    seed: int
    rounds: int                 # rounds of the chain
    args: tuple[str, ...]       # main.py's command line, without the interpreter and the device
    run_dir: Path               # where its rounds' state.json files appear
    after: tuple[str, ...]      # jobs that must succeed first
    theta0: Path | None = None  # WSL: done once theta0 exists (it may come from another run)

    def rounds_done(self) -> int:
        if self.theta0 is not None:
            return self.rounds if self.theta0.is_file() else 0
        return sum((self.run_dir / f"round_{r:03d}" / STATE_FILE).is_file() for r in range(self.rounds))

    @property
    def done(self) -> bool:
        """Every round, or fewer when the run stopped early (its pool exhausted: main.py ends the run there)."""
        return self.rounds_done() == self.rounds or self._exhausted()

    def _exhausted(self) -> bool:
        finished = sorted(self.run_dir.glob(f"round_[0-9][0-9][0-9]/{STATE_FILE}"))
        if self.theta0 is not None or not finished:
            return False
        try:
            return bool(json.loads(finished[-1].read_text()).get("exhausted"))
        except (OSError, ValueError):
            return False


def _job(dataset: str, method: str, seed: int, rounds: int, extras: Sequence[str], tag: str | None,
         after: tuple[str, ...]) -> Job:
    run_id = exp_id(method, seed, tag)
    last = rounds - 1 if rounds > 1 else None
    cfg = resolve(dataset, method, seed, 0, run_id, extras, last)
    args = (script_path("main.py"), "--yaml", f"{dataset}.yaml", "--MYSEED", str(seed), "--al_type", method,
            *round_args(0, last), "--exp_id", run_id, *extras)
    return Job(f"{dataset}-{run_id}", dataset, method, seed, rounds, args, run_dir(cfg), after,
               theta0_path(cfg) if method == C.WSL else None)


def plan(datasets: Sequence[str], methods: Sequence[str], seeds: Sequence[int], rounds: int | None,
         extras: Sequence[str], tag: str | None = None) -> list[Job]:
    """Every job of the study, each after the jobs it depends on (ConfigError on a wrong selection)."""
    check_selection(datasets, methods, seeds, rounds, extras)
    jobs: dict[str, Job] = {}
    for dataset in dict.fromkeys(datasets):
        for seed in dict.fromkeys(seeds):
            for method in dict.fromkeys(methods):
                n_rounds = 1 if method in C.SINGLE_ROUND_METHODS else study_rounds(dataset, method, rounds, extras)
                after: tuple[str, ...] = ()
                needs_theta0 = method != C.WSL and resolve(dataset, method, seed, 0, exp_id(method, seed, tag),
                                                           extras).task == C.TASK_JOINT
                if needs_theta0:
                    wsl = _job(dataset, C.WSL, seed, 1, extras, tag, ())
                    jobs.setdefault(wsl.name, wsl)
                    after = (wsl.name,)
                job = _job(dataset, method, seed, n_rounds, extras, tag, after)
                jobs.setdefault(job.name, job)
    return list(jobs.values())
