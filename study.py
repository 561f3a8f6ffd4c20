"""Run a whole study: datasets x methods x seeds, each a chain of rounds, with its dependencies.

    python study.py --datasets synthetic --methods Random Entropy --seeds 0 1 2 --rounds 5 -- --max_epochs 10
    python study.py status --datasets synthetic --methods Random Entropy --seeds 0 1 2 --rounds 5

One job = one (dataset, method, seed) `main.py` call over its rounds, after that seed's WSL job for
the joint task's stage-2 methods (studies/plan.py). The local backend runs --per_gpu jobs on each
visible GPU (CUDA_VISIBLE_DEVICES is respected), or --jobs CPU processes sharing the cores on a
machine without one. Finished rounds are skipped: the same command resumes a study. Exit status: 0
when every job succeeded, 1 when one failed (status says which and why), 130 on Ctrl-C.
Everything after `--` goes to every main.py call, as with gen_configs.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import torch

import constants as C
from gen_configs import add_selection_arguments, default_python, split_extras
from parseit import ConfigError, exit_on_error, parse_config, resolve_path
from studies.local import LocalRunner, StudyFolder, slots
from studies.plan import Job, plan
from studies.slurm import SlurmError, SlurmOptions, submit
from studies.status import status_table

EXIT_FAILED = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message}: see 'python study.py --help'")


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    argv, extras = split_extras(argv)
    command = "run"
    if argv and argv[0] in ("run", "status"):
        command, argv = argv[0], argv[1:]
    parser = _Parser(prog="python study.py [run|status]", description=__doc__.splitlines()[0],
                     epilog="Options after '--' are passed verbatim to every main.py call.")
    add_selection_arguments(parser)
    parser.add_argument("--backend", choices=("local", "slurm"), default="local",
                        help="local: this machine's GPUs (or CPU processes); slurm: one Slurm job per --per_gpu chains")
    parser.add_argument("--per_gpu", type=int, default=4, metavar="N",
                        help="jobs at a time on each GPU (slurm: chains per Slurm job)")
    parser.add_argument("--jobs", type=int, default=2, metavar="N",
                        help="jobs at a time on a machine without a GPU (they share the cores; default 2, "
                             "1.23x faster than 1 on a 2-core machine)")
    parser.add_argument("--study_dir", type=Path, default=None,
                        help="logs and job records (default: <exp_root>/studies/<exp_tag or 'study'>)")
    parser.add_argument("--python", default=default_python(), help="interpreter of the main.py calls")
    slurm = parser.add_argument_group("slurm backend")
    slurm.add_argument("--partition", default=None, help="Slurm partition (default: the cluster's)")
    slurm.add_argument("--account", default=None, help="Slurm account")
    slurm.add_argument("--time_min", type=int, default=24 * 60, help="time limit per Slurm job, minutes "
                       "(a job that reaches it is requeued and resumes)")
    slurm.add_argument("--gpus_per_job", type=int, default=1, help="GPUs per Slurm job (0: CPU only)")
    slurm.add_argument("--cpus_per_job", type=int, default=8, help="CPUs per Slurm job")
    args = parser.parse_args(argv)
    args.command = command
    for name in ("per_gpu", "jobs", "time_min", "cpus_per_job"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.gpus_per_job < 0:
        raise ConfigError(f"--gpus_per_job must be >= 0, got {args.gpus_per_job}")
    return args, extras


def study_folder(args: argparse.Namespace, extras: Sequence[str]) -> StudyFolder:
    if args.study_dir is not None:
        return StudyFolder(resolve_path(str(args.study_dir)))
    cfg = parse_config(["--yaml", f"{args.datasets[0]}.yaml", *extras])
    return StudyFolder(resolve_path(cfg.exp_root) / "studies" / (args.exp_tag or "study"))


def run(jobs: Sequence[Job], folder: StudyFolder, args: argparse.Namespace) -> int:
    places = slots(torch.cuda.device_count(), args.per_gpu, args.jobs, os.cpu_count() or 1)
    where = f"{len(places)} at a time on {'GPU' if places[0].gpu is not None else 'the CPU'}"
    print(f"study: {len(jobs)} jobs ({sum(j.done for j in jobs)} already done), {where}; logs in {folder.root}")
    runner = LocalRunner(jobs, folder, args.python, places)
    try:
        ok = runner.run()
    except KeyboardInterrupt:
        print("study: interrupted; run the same command again to resume", file=sys.stderr)
        return C.EXIT_INTERRUPTED
    print(status_table(jobs, folder))
    return 0 if ok else EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> None:
    with exit_on_error(OSError):
        args, extras = parse_args(sys.argv[1:] if argv is None else argv)
        jobs = plan(args.datasets, args.methods, args.seeds, args.rounds, extras, args.exp_tag)
        folder = study_folder(args, extras)
    if args.command == "status":
        print(status_table(jobs, folder))
        return
    if args.backend == "slurm":
        with exit_on_error(SlurmError):
            ids = submit(jobs, folder, args.python, SlurmOptions(args.partition, args.account, args.time_min,
                                                                 args.gpus_per_job, args.cpus_per_job, args.per_gpu))
        print(f"study: {len(ids)} Slurm jobs submitted ({' '.join(ids) or 'none: every round is done'}); "
              f"python study.py status ... shows their progress; logs in {folder.root}")
        return
    sys.exit(run(jobs, folder, args))


if __name__ == "__main__":
    main()
