"""Shell scripts that run a whole study: one `main.py` call per round, per method and seed.

    python gen_configs.py                                    # glas and cub, all methods, seeds 0-4
    python gen_configs.py --datasets synthetic --methods Random --seeds 0 --rounds 2 -- --max_epochs 5

Writes `run-<dataset>-<method>.sh` (every seed) and `run-<dataset>-<method>-myseed-<s>.sh` (one
seed). Each script takes the CUDA id as its first argument (default 0). A stage-2 method needs the
seed's stage-1 checkpoint theta0, so each of its seed blocks starts with the WSL call, guarded to
run only while theta0 is missing. `main.py` skips finished rounds, so a killed script is simply
started again. With --chain_rounds, each (method, seed) is one `main.py` call over all its rounds
(--al_it_end), which pays the start-up (imports, data, theta0) once per run instead of once per
round. Everything after `--` is passed verbatim to every `main.py` call; it is checked
against the configuration schema before any script is written.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import constants as C
from al.state import theta0_path
from atomic_io import atomic_write_text
from parseit import (
    SOURCE_CHECKOUT,
    Config,
    ConfigError,
    exit_on_error,
    parse_config,
    resolve_key,
    script_path,
    split_command_line,
    work_root,
    yaml_path,
)

DEFAULT_DATASETS = (C.GLAS, C.CUB)
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
# Keys every generated line sets itself; an extra override of one of them would contradict the script.
RESERVED_KEYS = ("al_type", "MYSEED", "al_it", "al_it_end", "exp_id", "cudaid")
GPU_ARG = '"${1:-0}"'


class _Parser(argparse.ArgumentParser):
    """argparse whose errors become one-line ConfigErrors (exit code 2 through exit_on_error)."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message}: see 'python gen_configs.py --help'")


def default_python(repo_root: Path | None = None) -> str:
    """The repository's virtual environment when it exists (scripts run from the repository root); in an installed
    copy, the interpreter the package is installed in (a bare python3 may not have it)."""
    if ((work_root() if repo_root is None else repo_root) / ".venv" / "bin" / "python").is_file():
        return ".venv/bin/python"
    return "python3" if SOURCE_CHECKOUT else sys.executable


def exp_id(method: str, seed: int, tag: str | None = None) -> str:
    """Deterministic run id, so a script started again resumes the same run folders."""
    return f"{method}-seed_{seed}" + (f"-{tag}" if tag else "")


def check_extras(extras: Sequence[str]) -> None:
    """Extra overrides must be well-formed keys of the schema and leave the script's own keys alone."""
    yaml_name, pairs = split_command_line(list(extras))
    if yaml_name is not None:
        raise ConfigError("--yaml cannot be passed after '--': choose the datasets with --datasets")
    for name in pairs:
        path = resolve_key(name)
        if path in RESERVED_KEYS:
            raise ConfigError(f"--{name} cannot be passed after '--': the scripts set it themselves "
                              "(use --methods, --seeds, --rounds, --exp_tag or the script's GPU argument)")


def round_args(al_it: int, al_it_end: int | None) -> list[str]:
    return ["--al_it", str(al_it)] + ([] if al_it_end is None else ["--al_it_end", str(al_it_end)])


def resolve(dataset: str, method: str, seed: int, al_it: int, run_id: str, extras: Sequence[str],
            al_it_end: int | None = None) -> Config:
    """The configuration one generated line runs with (ConfigError if any value is wrong)."""
    return parse_config(["--yaml", f"{dataset}.yaml", "--MYSEED", str(seed), "--al_type", method,
                         *round_args(al_it, al_it_end), "--exp_id", run_id, *extras])


def main_call(python: str, dataset: str, method: str, seed: int, al_it: int, run_id: str,
              extras: Sequence[str], al_it_end: int | None = None) -> str:
    """One `main.py` call; every value is shell-quoted except the GPU argument."""
    args = [python, script_path("main.py"), "--yaml", f"{dataset}.yaml", "--MYSEED", str(seed), "--al_type", method,
            *round_args(al_it, al_it_end), "--exp_id", run_id]
    return " ".join([*map(shlex.quote, args), "--cudaid", GPU_ARG, *map(shlex.quote, extras)])


def script_path_text(path: Path, repo_root: Path | None = None) -> str:
    """Paths inside the repository (installed: the working directory) are written relative to it (the scripts cd
    there first)."""
    try:
        return str(path.relative_to(work_root() if repo_root is None else repo_root))
    except ValueError:
        return str(path)


def seed_block(dataset: str, method: str, seed: int, rounds: int, extras: Sequence[str], python: str,
               tag: str | None, chain: bool = False) -> list[str]:
    """The lines of one (method, seed): the guarded WSL call for stage-2 methods, then one line per round
    (with `chain`, one line for all the rounds)."""
    run_id = exp_id(method, seed, tag)
    n_rounds = 1 if method in C.SINGLE_ROUND_METHODS else rounds
    # (al_it, al_it_end) of each main.py line; the last one is checked against the schema.
    spans = [(0, n_rounds - 1)] if chain and n_rounds > 1 else [(r, None) for r in range(n_rounds)]
    first, last = spans[-1]
    cfg = resolve(dataset, method, seed, first, run_id, extras, last)
    lines = [f"# {method} seed {seed}: {n_rounds} round(s), run folder exp_id {run_id}"]
    if method != C.WSL and cfg.task == C.TASK_JOINT:  # the other tasks have no stage 1
        wsl_id = exp_id(C.WSL, seed, tag)
        resolve(dataset, C.WSL, seed, 0, wsl_id, extras)
        theta0 = shlex.quote(script_path_text(theta0_path(cfg)))
        lines.append(f"[ -f {theta0} ] || time {main_call(python, dataset, C.WSL, seed, 0, wsl_id, extras)}")
    return lines + [f"time {main_call(python, dataset, method, seed, first, run_id, extras, last)}"
                    for first, last in spans]


def script_text(blocks: Sequence[Sequence[str]], title: str, repo_root: Path | None = None) -> str:
    """A script's text: it first goes where relative paths lead (the repository root; installed: the working
    directory of the generator)."""
    repo_root = work_root() if repo_root is None else repo_root
    header = ["#!/usr/bin/env bash", f"# {title}",
              "# Usage: bash <this script> [CUDA id, default 0]. Generated by gen_configs.py.",
              "# Finished rounds are skipped: after an interruption, run it again.",
              "set -euo pipefail", f"cd {shlex.quote(str(repo_root))}", ""]
    body = [line for block in blocks for line in [*block, ""]]
    return "\n".join(header + body)


def build_scripts(datasets: Sequence[str], methods: Sequence[str], seeds: Sequence[int], rounds: int | None,
                  extras: Sequence[str], python: str, tag: str | None = None, chain: bool = False) -> dict[str, str]:
    """{file name: script text} for every dataset and method; validates everything, writes nothing."""
    check_selection(datasets, methods, seeds, rounds, extras)
    seeds = list(dict.fromkeys(seeds))
    scripts: dict[str, str] = {}
    for dataset in dict.fromkeys(datasets):
        for method in dict.fromkeys(methods):
            n_rounds = study_rounds(dataset, method, rounds, extras)
            blocks = [seed_block(dataset, method, s, n_rounds, extras, python, tag, chain) for s in seeds]
            name = f"run-{dataset}-{method}"
            scripts[f"{name}.sh"] = script_text(blocks, f"{method} on {dataset}, seeds {' '.join(map(str, seeds))}")
            for s, block in zip(seeds, blocks):
                scripts[f"{name}-myseed-{s}.sh"] = script_text([block], f"{method} on {dataset}, seed {s}")
    return scripts


def check_selection(datasets: Sequence[str], methods: Sequence[str], seeds: Sequence[int], rounds: int | None,
                    extras: Sequence[str]) -> None:
    """A study's datasets, methods, seeds, rounds and pass-through overrides (ConfigError on the first wrong one)."""
    for dataset in datasets:
        if dataset not in C.DATASETS:
            raise ConfigError(f"unknown dataset '{dataset}': use one of {', '.join(C.DATASETS)}")
        yaml_path(f"{dataset}.yaml")
    for method in methods:
        if method not in C.METHODS:
            raise ConfigError(f"unknown method '{method}': use one of {', '.join(C.METHODS)}")
    if not seeds:
        raise ConfigError("no seed given: pass --seeds S [S ...]")
    if any(s < 0 for s in seeds):
        raise ConfigError(f"seeds must be >= 0, got {min(seeds)}")
    if rounds is not None and rounds < 1:
        raise ConfigError(f"--rounds must be >= 1, got {rounds}")
    check_extras(extras)


def study_rounds(dataset: str, method: str, rounds: int | None, extras: Sequence[str]) -> int:
    """--rounds, or the configuration's max_al_its; never past max_al_its (main.py would refuse)."""
    max_al_its = parse_config(["--yaml", f"{dataset}.yaml", "--al_type", method, *extras]).max_al_its
    if rounds is None:
        return max_al_its
    if rounds > max_al_its and method not in C.SINGLE_ROUND_METHODS:
        raise ConfigError(f"--rounds {rounds} exceeds max_al_its {max_al_its} of {dataset}.yaml: "
                          f"lower --rounds or pass '-- --max_al_its {rounds}'")
    return rounds


def write_scripts(scripts: dict[str, str], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in scripts.items():
        atomic_write_text(out / name, text, mode=0o755)
        written.append(out / name)
    return written


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """What a study runs: --datasets, --methods, --seeds, --rounds, --exp_tag (shared with study.py)."""
    parser.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS), metavar="DS",
                        help=f"datasets with a config_yaml/<ds>.yaml (default: {' '.join(DEFAULT_DATASETS)})")
    parser.add_argument("--methods", nargs="+", default=list(C.METHODS), metavar="M",
                        help=f"methods (default: {' '.join(C.METHODS)})")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS), metavar="S",
                        help="seeds (default: 0 1 2 3 4)")
    parser.add_argument("--rounds", type=int, default=None, metavar="N",
                        help="rounds per active-learning run (default: the dataset's max_al_its)")
    parser.add_argument("--exp_tag", default=None, help="suffix of every run id: <method>-seed_<s>-<tag>")


def split_extras(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the script's own options, the main.py overrides after '--')."""
    argv = list(argv)
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1:]


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """The generator's own options, and the overrides after '--'."""
    argv, extras = split_extras(argv)
    parser = _Parser(description=__doc__.splitlines()[0],
                     epilog="Options after '--' are passed verbatim to every main.py call.")
    add_selection_arguments(parser)
    parser.add_argument("--chain_rounds", action="store_true",
                        help="one main.py call per (method, seed) running all its rounds (start-up paid once)")
    parser.add_argument("--out", type=Path, default=work_root(),
                        help="folder of the scripts (default: repository root; installed: the working directory)")
    parser.add_argument("--python", default=default_python(),
                        help="interpreter the scripts call (default: .venv/bin/python if present, else python3; "
                             "installed: this interpreter)")
    return parser.parse_args(argv), extras


def main(argv: Sequence[str] | None = None) -> None:
    with exit_on_error(OSError):
        args, extras = parse_args(sys.argv[1:] if argv is None else argv)
        scripts = build_scripts(args.datasets, args.methods, args.seeds, args.rounds, extras, args.python,
                                args.exp_tag, args.chain_rounds)
        written = write_scripts(scripts, args.out)
    print(f"{len(written)} scripts written to {args.out.resolve()}:")
    for path in written:
        print(f"  {path.name}")


if __name__ == "__main__":
    main()
