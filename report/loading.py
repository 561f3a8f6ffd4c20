"""Finding a dataset's run folders by their config.yaml and reading their finished rounds."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

import constants as C
from al.state import RunFolder, RunStateError
from report.aggregate import TASK_METRIC, Run, run_tag

CONFIG_FILE = "config.yaml"
# Folders of a fold that hold no run (the stage-1 checkpoints and Label_prop's kNN cache).
NOT_RUNS = ("theta0", "knn_cache", "superpixels")
# More run folders than this get a progress bar.
PROGRESS_MIN_RUNS = 20


class NoRunsError(FileNotFoundError):
    """No finished run of the dataset where the script looked."""


def run_folders(roots: Iterable[Path]) -> list[Path]:
    """Every folder holding a config.yaml under the roots; a run's own sub-folders are not walked."""
    found = []
    for root in roots:
        for folder, subdirs, files in os.walk(root):
            if CONFIG_FILE in files:
                found.append(Path(folder))
                subdirs.clear()
            else:
                subdirs[:] = sorted(d for d in subdirs if d not in NOT_RUNS and not d.startswith("."))
    return sorted(set(found))


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_FILE
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        raise RunStateError(f"{path} is not valid YAML: delete the run folder or restore the file") from None
    missing = [k for k in ("al_type", "MYSEED", "dataset", "split", "fold") if not isinstance(cfg, dict) or k not in cfg]
    if missing:
        raise RunStateError(f"{path} lacks '{missing[0]}': it was not written by main.py; move it out of the way")
    if run_task(cfg) not in C.TASKS:
        raise RunStateError(f"{path} has task {cfg['task']!r}, not one of {', '.join(C.TASKS)}: "
                            "it was not written by main.py; move it out of the way")
    return cfg


def run_task(cfg: Mapping[str, Any]) -> str:
    """The run's task: config.yaml's `task` (the original's SEGMENTATION is joint); joint without one."""
    task = cfg.get("task") or C.TASK_JOINT
    return C.TASK_ALIASES.get(task, task) if isinstance(task, str) else str(task)


def load_run(folder: Path, cfg: Mapping[str, Any]) -> Run:
    """The run's finished rounds 0..k-1 (a gap ends the run: later rounds are not comparable) and the
    diverged round that stopped it, if any."""
    run = RunFolder(folder)
    task = run_task(cfg)
    key, name = TASK_METRIC[task]
    states = []
    for r in run.done_rounds():
        if r != len(states):
            break
        state = run.read_state(r)
        if state.metric("test", key) is None:
            raise RunStateError(f"{run.round_dir(r)}/state.json lacks the {name}: "
                                "it was not written by main.py; delete that round and run it again")
        states.append(state)
    return Run(method=method_label(cfg), seed=int(cfg["MYSEED"]), folder=folder, states=tuple(states), task=task,
               tag=config_tag(cfg), failure=run.failure())


def method_label(cfg: Mapping[str, Any]) -> str:
    """The name a run is grouped and drawn under: its al_type, marked when its oracle annotates regions."""
    region = cfg.get("annotation_unit") == C.UNIT_REGION
    return f"{cfg['al_type']} (regions)" if region else str(cfg["al_type"])


def config_tag(cfg: Mapping[str, Any]) -> str:
    """The group of a run under --group_by tag: its exp_id less `-seed_<MYSEED>` (run_tag); a run with the
    default exp_id (<al_type>-seed_<MYSEED>) is in its method's group, region-level runs marked as there."""
    exp_id = cfg.get("exp_id")
    return run_tag(str(exp_id), int(cfg["MYSEED"])) if exp_id else method_label(cfg)


def matches(cfg: Mapping[str, Any], dataset: str, split: int, fold: int, debug_subfolder: str | None) -> bool:
    return (cfg["dataset"] == dataset and int(cfg["split"]) == split and int(cfg["fold"]) == fold
            and (debug_subfolder is None or (cfg.get("debug_subfolder") or "") == debug_subfolder))


def load_runs(roots: Sequence[Path], dataset: str, split: int, fold: int,
              debug_subfolder: str | None) -> list[Run]:
    """Every run of the dataset/split/fold under the roots (NoRunsError, naming the roots, if none)."""
    missing = [r for r in roots if not r.is_dir()]
    if missing:
        raise NoRunsError(f"{missing[0]} is not a folder: pass an existing --exp_root or --runs folder")
    folders = run_folders(roots)
    runs = []
    for folder in tqdm(folders, desc="reading runs", disable=True if len(folders) < PROGRESS_MIN_RUNS else None):
        cfg = read_config(folder)
        if matches(cfg, dataset, split, fold, debug_subfolder):
            runs.append(load_run(folder, cfg))
    if not any(run.states for run in runs):
        where = ", ".join(str(r) for r in roots)
        raise NoRunsError(f"no finished run of {dataset} (split {split}, fold {fold}"
                          f"{'' if debug_subfolder is None else f', debug_subfolder {debug_subfolder!r}'}) "
                          f"under {where}: run main.py first or pass --exp_root / --runs")
    return runs
