"""Aggregation of finished runs into per-method summaries: rounds over seeds, AUCs on one budget.

Pure functions over RoundStates (no files, no figures), shared by the figures, the tables and the
curve checks.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

import constants as C
from al.state import RoundState, RunStateError

X_AUTO, X_IMAGES, X_PIXELS, X_SECONDS = "auto", "images", "pixels", "seconds"
X_AXES = (X_AUTO, X_IMAGES, X_PIXELS, X_SECONDS)
# The number of labelled images: what auto draws classification runs against (not a --x choice).
X_LABELLED = "labelled"
# Per drawn axis: the x column of <ds>-rounds.csv and the figures' axis label.
X_COLUMN = {X_IMAGES: "percent_labelled", X_PIXELS: "percent_pixels", X_SECONDS: "annotation_seconds",
            X_LABELLED: "n_labelled"}
X_LABEL = {X_IMAGES: "labelled training images (%)", X_PIXELS: "annotated training pixels (%)",
           X_SECONDS: "annotators' time (s)", X_LABELLED: "labelled images"}
# The test metric drawn and integrated, per task: (metrics key, name in titles and tables).
TASK_METRIC = {C.TASK_JOINT: ("dice_idx", "test Dice"), C.TASK_CLASSIFICATION: ("acc", "test accuracy"),
               C.TASK_SEGMENTATION: ("miou", "test mIoU")}
# Runs named in full in an error line; more are counted.
MAX_NAMED_RUNS = 5
# --group_by: one curve per method (al_type, regions marked) or per run id less its seed (ablations).
GROUP_METHOD, GROUP_TAG = "method", "tag"
GROUP_BY = (GROUP_METHOD, GROUP_TAG)


def auc(values: Sequence[float], x: Sequence[float] | None = None) -> float:
    """Normalised trapezoid: the mean height of the curve, in %, over rounds 0..n-1 (unit spacing) or,
    given x, over x (divided by the span of x, so that it reads on the same scale).

    A single value (WSL, Full_sup) is its own AUC, as in the original. An x that does not advance
    (no annotation time recorded after round 0) falls back to unit spacing rather than dividing by 0.
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise ValueError("auc() needs at least one value")
    if v.size == 1:
        return float(v[0])
    t = np.arange(v.size, dtype=float) if x is None else np.asarray(x, dtype=float)
    if t[-1] == t[0]:
        t = np.arange(v.size, dtype=float)
    return float(np.sum((v[1:] + v[:-1]) / 2 * np.diff(t)) / (t[-1] - t[0]))


class Stat(NamedTuple):
    mean: float
    std: float
    n: int


NO_STAT = Stat(math.nan, math.nan, 0)


def mean_std(values: Iterable[float | None]) -> Stat:
    """Mean, population std (ddof 0, as the paper's tables) and count of the values that are not None."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if v.size == 0:
        return Stat(math.nan, math.nan, 0)
    return Stat(float(v.mean()), float(v.std(ddof=0)), int(v.size))


# ------------------------------------------------------------------------------------------------
# Aggregation (no files)
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """The finished rounds 0..k-1 of one method and seed, in order."""

    method: str
    seed: int
    folder: Path
    states: tuple[RoundState, ...]
    task: str = C.TASK_JOINT
    tag: str = ""      # its group under --group_by tag (run_tag); the method when empty
    failure: tuple[int, str] | None = None   # (round, error line) when a diverged round stopped the run

    def group(self, by: str) -> str:
        """The name of the curve the run belongs to under --group_by `by`."""
        return (self.tag or self.method) if by == GROUP_TAG else self.method

    @property
    def stop(self) -> str:
        """The last round run and why it was the last, e.g. "seed 0: r5 patience"."""
        if not self.states:
            return f"seed {self.seed}: no finished round"
        last = self.states[-1]
        why = last.stop_reason or ("finished" if last.exhausted else "not stopped")
        return f"seed {self.seed}: r{last.round} {why}"


@dataclass(frozen=True)
class RoundRow:
    """One round of one method, over the seeds."""

    round: int
    n_labelled: Stat
    x: Stat            # on the summary's axis: % images, % pixels or seconds
    test_dice: Stat
    valid_dice: Stat
    test_acc: Stat
    pseudo_dice: Stat
    valid_acc: Stat = NO_STAT
    percent_labelled: Stat = NO_STAT
    percent_pixels: Stat = NO_STAT
    test_score: Stat = NO_STAT    # the task's metric (TASK_METRIC): test Dice, accuracy or mIoU
    valid_score: Stat = NO_STAT


@dataclass(frozen=True)
class MethodSummary:
    method: str
    seeds: tuple[int, ...]
    rows: tuple[RoundRow, ...]
    seed_aucs: tuple[float, ...]
    notes: tuple[str, ...]
    x: str = X_IMAGES    # the axis drawn: X_IMAGES, X_PIXELS, X_SECONDS or X_LABELLED
    task: str = C.TASK_JOINT
    stops: tuple[str, ...] = ()       # classification: per seed, Run.stop
    seed_rounds: tuple[int, ...] = ()  # classification: per seed, the rounds it ran
    base_method: str = ""              # the method of its runs when it is named otherwise (--group_by tag)
    # Set when the methods drawn together reached different rounds: seed_aucs are then over rounds
    # 0..common_rounds-1, which every method reached, and own_seed_aucs over the method's own rounds.
    common_rounds: int = 0
    own_seed_aucs: tuple[float, ...] = ()
    # Set by report.checks: what looks wrong on the curve, the rounds whose mean fell, and whether a region
    # run annotated more pixels than the image-level runs (not comparable at equal budget).
    warnings: tuple[str, ...] = ()
    drop_rounds: tuple[int, ...] = ()
    more_pixels: bool = False

    @property
    def classification(self) -> bool:
        return self.task == C.TASK_CLASSIFICATION

    @property
    def metric_name(self) -> str:
        """The task's test metric in words ("test Dice", "test accuracy", "test mIoU")."""
        return TASK_METRIC[self.task][1]

    @property
    def auc(self) -> Stat:
        return mean_std(self.seed_aucs)

    @property
    def own_auc(self) -> Stat:
        """The AUC over the method's own rounds (the same as auc when every method reached the same rounds)."""
        return mean_std(self.own_seed_aucs or self.seed_aucs)

    @property
    def single_round(self) -> bool:
        return (self.base_method or self.method) in C.SINGLE_ROUND_METHODS

    @property
    def has_pseudo(self) -> bool:
        return any(row.pseudo_dice.n for row in self.rows)


def run_tag(exp_id: str, seed: int) -> str:
    """The run id less its seed: `Label_prop-seed_0` -> `Label_prop`; gen_configs' `--exp_tag knn10`
    (`Label_prop-seed_0-knn10`) and a hand-made `Label_prop-knn10-seed_0` -> `Label_prop-knn10`. An id
    without `-seed_<seed>` is its own tag."""
    return re.sub(rf"-seed_{seed}(?=-|$)", "", exp_id, count=1) or exp_id


def group_runs(runs: Iterable[Run], by: str = GROUP_METHOD) -> dict[str, dict[int, Run]]:
    """{group: {seed: run}}, the group being the method or (--group_by tag) the run id less its seed;
    two runs of one group and seed are ambiguous and rejected, as is a tag shared by two methods."""
    groups: dict[str, dict[int, Run]] = defaultdict(dict)
    for run in runs:
        name = run.group(by)
        other = groups[name].get(run.seed)
        if other is not None:
            hint = ", or draw each as its own curve with --group_by tag" \
                if by == GROUP_METHOD and other.group(GROUP_TAG) != run.group(GROUP_TAG) else ""
            raise RunStateError(f"two runs of {name} seed {run.seed}: {other.folder} and {run.folder}; "
                                f"choose one with --runs or --debug_subfolder{hint}")
        mixed = next((r for r in groups[name].values() if r.method != run.method), None)
        if mixed is not None:
            raise RunStateError(f"the runs tagged {name} are of two methods, {mixed.method} ({mixed.folder}) and "
                                f"{run.method} ({run.folder}): give them distinct --exp_id or use --group_by method")
        groups[name][run.seed] = run
    return groups


def method_order(methods: Iterable[str]) -> list[str]:
    """The project's method order, each method's region-level runs after it, then any other name."""
    names = set(methods)
    known = [n for m in C.METHODS for n in (m, f"{m} (regions)") if n in names]
    return known + sorted(names - set(known))


def group_order(groups: Mapping[str, Mapping[int, Run]]) -> list[str]:
    """The groups in their methods' order (method_order), each method's own group before its tags."""
    method = {name: next(iter(runs.values())).method for name, runs in groups.items() if runs}
    rank = {m: i for i, m in enumerate(method_order(method.values()))}
    return sorted(method, key=lambda name: (rank[method[name]], name != method[name], name))


def dataset_task(runs: Sequence[Run]) -> str:
    """The task every run shares (joint when there is none); RunStateError when both are there."""
    tasks = {run.task for run in runs}
    if len(tasks) > 1:
        named = "; ".join(f"{task}: {next(str(r.folder) for r in runs if r.task == task)}" for task in sorted(tasks))
        raise RunStateError(f"the runs mix the {' and '.join(sorted(tasks, key=C.TASKS.index))} tasks ({named}): "
                            "choose one task's runs with --runs or --debug_subfolder")
    return tasks.pop() if tasks else C.TASK_JOINT


def x_value(state: RoundState, x: str) -> float | None:
    """The x of a round: % of images pixel-labelled, % of pixels annotated (files that predate pixel
    counts give their % of images), the annotators' seconds so far (None when not recorded) or the
    number of labelled images."""
    if x == X_LABELLED:
        return float(state.n_labelled)
    if x == X_SECONDS:
        return None if state.annotation_seconds is None else float(state.annotation_seconds)
    if x == X_PIXELS and state.percent_pixels is not None:
        return state.percent_pixels
    return state.percent_labelled


def x_axis(runs: Sequence[Run], x: str, task: str = C.TASK_JOINT) -> str:
    """The axis to draw for --x: auto is pixels when some run picks regions, else images (classification:
    the number of labelled images, and no pixels). Seconds need every round of every run but WSL's and
    Full_sup's (flat lines) to carry the annotators' time: RunStateError, naming the runs without, otherwise."""
    if task == C.TASK_CLASSIFICATION and x == X_AUTO:
        return X_LABELLED
    if task == C.TASK_CLASSIFICATION and x == X_PIXELS:
        raise RunStateError("--x pixels: classification runs annotate whole images, not pixels; "
                            "use --x auto (labelled images), images or seconds")
    if x == X_AUTO:
        return X_PIXELS if any(s.unit == C.UNIT_REGION for run in runs for s in run.states) else X_IMAGES
    if x == X_SECONDS:
        untimed = [str(run.folder) for run in runs if run.method not in C.SINGLE_ROUND_METHODS
                   and any(s.annotation_seconds is None for s in run.states)]
        if untimed:
            named = ", ".join(untimed[:MAX_NAMED_RUNS])
            more = f" and {len(untimed) - MAX_NAMED_RUNS} more" if len(untimed) > MAX_NAMED_RUNS else ""
            raise RunStateError(f"--x seconds needs the annotators' time of every round, which {len(untimed)} "
                                f"run(s) lack: {named}{more}; use --x images (or pixels), or answer those runs "
                                "through a Label Studio export (--oracle_answers), which records lead_time")
    return x


def _row(r: int, states: Sequence[RoundState], x: str, task: str) -> RoundRow:
    """Round r over the given seeds' states."""
    key = TASK_METRIC[task][0]
    return RoundRow(
        round=r,
        n_labelled=mean_std(float(s.n_labelled) for s in states),
        x=mean_std(x_value(s, x) for s in states),
        test_dice=mean_std(s.metric("test", "dice_idx") for s in states),
        valid_dice=mean_std(s.metric("valid", "dice_idx") for s in states),
        test_acc=mean_std(s.metric("test", "acc") for s in states),
        pseudo_dice=mean_std(s.metric("pseudo", "dice_idx") for s in states),
        valid_acc=mean_std(s.metric("valid", "acc") for s in states),
        percent_labelled=mean_std(s.percent_labelled for s in states),
        percent_pixels=mean_std(s.percent_pixels for s in states),
        test_score=mean_std(s.metric("test", key) for s in states),
        valid_score=mean_std(s.metric("valid", key) for s in states))


def seed_auc(run: Run, n: int | None, x: str) -> float:
    """One seed's AUC of its task's test metric over its rounds 0..n-1 (all its rounds for None),
    weighted by time on the seconds axis except for the flat lines (WSL, Full_sup)."""
    key = TASK_METRIC[run.task][0]
    states = run.states[:n]
    timed = x == X_SECONDS and run.method not in C.SINGLE_ROUND_METHODS
    return auc([s.metric("test", key) for s in states], [x_value(s, x) for s in states] if timed else None)


def summarise_method(method: str, runs: Mapping[int, Run], x: str = X_IMAGES,
                     task: str = C.TASK_JOINT) -> MethodSummary | None:
    """Per-round mean ± std over seeds on the rounds every seed finished; None if no seed finished one.
    Classification: every round any seed ran, over the seeds that reached it (see summarise_classification)."""
    notes = [f"{method} seed {s} has no finished round: left out" for s, r in sorted(runs.items()) if not r.states]
    kept = {s: r for s, r in sorted(runs.items()) if r.states}
    if not kept:
        return None
    base = next(iter(kept.values())).method
    if task == C.TASK_CLASSIFICATION:
        return replace(summarise_classification(method, kept, x, notes), base_method=base if base != method else "")
    lengths = {s: len(r.states) for s, r in kept.items()}
    n = min(lengths.values())
    rows = [_row(r, [run.states[r] for run in kept.values()], x, task) for r in range(n)]
    seed_aucs = tuple(seed_auc(run, n, x) for run in kept.values())
    return MethodSummary(method, tuple(kept), tuple(rows), seed_aucs, tuple(notes), x, task=task,
                         base_method=base if base != method else "")


def summarise_classification(method: str, kept: Mapping[int, Run], x: str, notes: Sequence[str]) -> MethodSummary:
    """Test accuracy of a classification method whose seeds may stop at different rounds (patience):
    round r is the mean ± std over the seeds that ran it (its count in test_acc.n), and each seed's AUC
    is over its own rounds; a seed that stopped is neither cut to the shortest seed nor counted as 0."""
    notes = list(notes)
    notes += [f"{method} seed {s} has not stopped (last finished round r{run.states[-1].round}): its AUC "
              "covers the rounds it finished" for s, run in kept.items() if not run.states[-1].exhausted]
    n = max(len(run.states) for run in kept.values())
    rows = [_row(r, [run.states[r] for run in kept.values() if r < len(run.states)], x, C.TASK_CLASSIFICATION)
            for r in range(n)]
    seed_aucs = tuple(seed_auc(run, None, x) for run in kept.values())
    return MethodSummary(method, tuple(kept), tuple(rows), seed_aucs, tuple(notes), x, task=C.TASK_CLASSIFICATION,
                         stops=tuple(run.stop for run in kept.values()),
                         seed_rounds=tuple(len(run.states) for run in kept.values()))


def summarise(runs: Iterable[Run], x: str = X_AUTO, group_by: str = GROUP_METHOD) -> list[MethodSummary]:
    """One summary per method (--group_by tag: per run id less its seed), in the project's method order,
    all on the axis --x resolves to, their AUCs over the rounds they all reached (common_rounds)."""
    runs = list(runs)
    groups = group_runs(runs, group_by)
    task = dataset_task(runs)
    axis = x_axis(runs, x, task)
    out = [summarise_method(m, groups[m], axis, task) for m in group_order(groups)]
    return common_rounds([s for s in out if s is not None], groups)


def common_rounds(summaries: Sequence[MethodSummary], groups: Mapping[str, Mapping[int, Run]]) -> list[MethodSummary]:
    """The summaries with their AUCs over the rounds every method reached, so that the figure and the
    table compare them on one budget. The flat lines (WSL, Full_sup) do not limit the rounds. Unchanged
    when every method reached the same rounds; otherwise each keeps its own AUC in own_seed_aucs.

    A method reached the rounds it draws: for the joint task those every seed finished, for
    classification those any seed ran; a seed that stopped before the common rounds keeps its own
    (summarise_classification)."""
    reached = [len(s.rows) for s in summaries if not s.single_round]
    if not reached or min(reached) == max(reached):
        return list(summaries)
    k = min(reached)
    out = []
    for s in summaries:
        limited = s.seed_aucs
        if len(s.rows) > k:
            limited = tuple(seed_auc(groups[s.method][seed], k, s.x) for seed in s.seeds)
        out.append(replace(s, seed_aucs=limited, own_seed_aucs=s.seed_aucs, common_rounds=k))
    return out
