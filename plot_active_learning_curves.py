"""Active-learning curves and AUC table of every run of one dataset.

    python plot_active_learning_curves.py --dataset glas
    python plot_active_learning_curves.py --dataset synthetic --exp_root /tmp/exps --out paper/
    python plot_active_learning_curves.py --dataset glas --x seconds
    python plot_active_learning_curves.py --dataset digits
    python plot_active_learning_curves.py --dataset glas --group_by tag

Runs are found by their own config.yaml (dataset, split, fold, debug_subfolder), under --exp_root
or in the folders given with --runs, and grouped by method (al_type, marked "(regions)" for
region-level annotation) and seed (MYSEED); two runs of one method and seed are refused. With
`--group_by tag` they are grouped by their exp_id less `-seed_<MYSEED>` instead, so that ablations of
one method (`Label_prop-seed_0` and `Label_prop-seed_0-knn10`, gen_configs.py's `--exp_tag knn10`, or
`Label_prop-knn10-seed_0`) are curves of their own, named by that tag (a run without exp_id is in its
method's group); WSL and Full_sup stay flat lines. Only finished rounds count (`round_<rrr>/state.json`;
`round_<rrr>.partial/` is ignored), and of a method only the rounds that every one of its seeds has
finished. Writes into --out: `<ds>-dice-test.{png,pdf}`, `<ds>-pseudo-dice.png` (Label_prop),
`<ds>-auc.{md,csv}`, `<ds>-rounds.csv`.

Classification runs (config.yaml `task: classification`; no `task` key is the joint task) are drawn
by test accuracy instead: `<ds>-acc-test.{png,pdf}` against the number of labelled images, the AUC
of test accuracy in `<ds>-auc.{md,csv}` with a `stopped` column (per seed, the last round it ran,
0-based as the round folders, and its stop_reason: patience, pool exhausted, max_al_its reached;
"not stopped" for a run still going or interrupted), and accuracy columns in `<ds>-rounds.csv`; no
pseudo-mask figure. Patience stops seeds at different rounds, so no round is dropped: each round is
the mean ± std over the seeds that reached it (n_seeds in `<ds>-rounds.csv`; the curve is dotted
where fewer than all seeds are left), and each seed's AUC is taken over its own rounds 0..stop
before the mean ± std over seeds. A seed that stopped early is never padded with zeros. One dataset's
runs must all be of one task.

--x chooses what the curves are drawn against, the same for every method (WSL and Full_sup are flat
lines whatever it is): `images`, the % of training images labelled; `pixels`, the % of training
pixels annotated (regions revealed included; joint runs only); `seconds`, the annotators' cumulative
time, which only rounds answered through a Label Studio export record (lead_time), so every other
method's run must have it in every round. `auto` (the default) is, for joint runs, `pixels` when some
run annotates regions, else `images`; for classification runs, the number of labelled images.
The AUC is the mean height of the test-Dice (classification: test-accuracy) curve, in %: over rounds
with unit spacing for images, pixels and labelled images (as the paper; rounds are the budget steps),
and weighted by the seconds each round took for seconds (trapezoid over the seconds divided by the
seconds spanned, per seed).

The AUCs compare the methods on one budget: when the methods drawn reached different rounds, every
method's AUC (legend and table) is over rounds 0..k-1, the rounds all of them reached (WSL and
Full_sup, single rounds, do not limit k), the legend's title and the table's heading say so ("AUC over
rounds 0-2 (all methods)"), and the table adds each method's AUC over its own rounds in a column
marked * (`auc_rounds`, `own_auc_*` in the csv). A method reaches the rounds it draws: for joint runs
those every seed finished; for classification those any seed ran, a seed that stopped earlier keeping
its own rounds as above. When all reached the same rounds, the outputs have no such column.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import numpy as np
import yaml
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm import tqdm

import constants as C
from al.state import RoundState, RunFolder, RunStateError
from atomic_io import atomic_write, atomic_write_text
from parseit import REPO_ROOT, exit_on_error

CONFIG_FILE = "config.yaml"
# Folders of a fold that hold no run (the stage-1 checkpoints and Label_prop's kNN cache).
NOT_RUNS = ("theta0", "knn_cache", "superpixels")
# More run folders than this get a progress bar.
PROGRESS_MIN_RUNS = 20
MAX_TICKS = 12
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
TASK_METRIC = {C.TASK_JOINT: ("dice_idx", "test Dice"), C.TASK_CLASSIFICATION: ("acc", "test accuracy")}
# Runs named in full in an error line; more are counted.
MAX_NAMED_RUNS = 5
# --group_by: one curve per method (al_type, regions marked) or per run id less its seed (ablations).
GROUP_METHOD, GROUP_TAG = "method", "tag"
GROUP_BY = (GROUP_METHOD, GROUP_TAG)


class NoRunsError(FileNotFoundError):
    """No finished run of the dataset where the script looked."""


class _Parser(argparse.ArgumentParser):
    """argparse whose errors become one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}: see 'python plot_active_learning_curves.py --help'", file=sys.stderr)
        sys.exit(2)


# ------------------------------------------------------------------------------------------------
# Maths
# ------------------------------------------------------------------------------------------------
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

    @property
    def classification(self) -> bool:
        return self.task == C.TASK_CLASSIFICATION

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
        raise RunStateError(f"the runs mix the joint and classification tasks ({named}): "
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


def _row(r: int, states: Sequence[RoundState], x: str) -> RoundRow:
    """Round r over the given seeds' states."""
    return RoundRow(
        round=r,
        n_labelled=mean_std(float(s.n_labelled) for s in states),
        x=mean_std(x_value(s, x) for s in states),
        test_dice=mean_std(s.metric("test", "dice_idx") for s in states),
        valid_dice=mean_std(s.metric("valid", "dice_idx") for s in states),
        test_acc=mean_std(s.metric("test", "acc") for s in states),
        pseudo_dice=mean_std(s.metric("pseudo", "dice_idx") for s in states),
        valid_acc=mean_std(s.metric("valid", "acc") for s in states),
        percent_labelled=mean_std(s.percent_labelled for s in states))


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
    if len(set(lengths.values())) > 1:
        notes.append(f"{method}: seeds finished {min(lengths.values())} to {max(lengths.values())} rounds "
                     f"({', '.join(f'seed {s}: {k}' for s, k in lengths.items())}); only the {n} rounds every "
                     "seed finished count")
    rows = [_row(r, [run.states[r] for run in kept.values()], x) for r in range(n)]
    seed_aucs = tuple(seed_auc(run, n, x) for run in kept.values())
    return MethodSummary(method, tuple(kept), tuple(rows), seed_aucs, tuple(notes), x,
                         base_method=base if base != method else "")


def summarise_classification(method: str, kept: Mapping[int, Run], x: str, notes: Sequence[str]) -> MethodSummary:
    """Test accuracy of a classification method whose seeds may stop at different rounds (patience):
    round r is the mean ± std over the seeds that ran it (its count in test_acc.n), and each seed's AUC
    is over its own rounds; a seed that stopped is neither cut to the shortest seed nor counted as 0."""
    notes = list(notes)
    notes += [f"{method} seed {s} has not stopped (last finished round r{run.states[-1].round}): its AUC "
              "covers the rounds it finished" for s, run in kept.items() if not run.states[-1].exhausted]
    n = max(len(run.states) for run in kept.values())
    rows = [_row(r, [run.states[r] for run in kept.values() if r < len(run.states)], x) for r in range(n)]
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


# ------------------------------------------------------------------------------------------------
# Tables
# ------------------------------------------------------------------------------------------------
def _fmt(x: float, digits: int = 2) -> str:
    return "" if math.isnan(x) else f"{x:.{digits}f}"


def _axis(summaries: Sequence[MethodSummary]) -> str:
    """The axis the summaries share (images when there is none)."""
    return summaries[0].x if summaries else X_IMAGES


def _seed_count(summaries: Sequence[MethodSummary]) -> str:
    counts = sorted({len(s.seeds) for s in summaries})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"


def _classification(summaries: Sequence[MethodSummary]) -> bool:
    """Whether the summaries are of classification runs (they share one task)."""
    return bool(summaries) and summaries[0].classification


def _rounds_range(summary: MethodSummary) -> str:
    """Rounds its seeds ran: "8", or "6-8" when they stopped at different rounds."""
    lo, hi = min(summary.seed_rounds, default=0), max(summary.seed_rounds, default=0)
    return str(hi) if lo == hi else f"{lo}-{hi}"


def common_rounds_of(summaries: Sequence[MethodSummary]) -> int:
    """The rounds every method reached when the methods reached different rounds (their AUCs are over
    rounds 0..k-1), else 0."""
    return max((s.common_rounds for s in summaries), default=0)


def rounds_span(k: int) -> str:
    """Rounds 0..k-1 in words: "round 0", "rounds 0-2"."""
    return "round 0" if k == 1 else f"rounds 0-{k - 1}"


def auc_heading(summaries: Sequence[MethodSummary]) -> str | None:
    """"AUC over rounds 0-2 (all methods)" when the methods reached different rounds, else None."""
    k = common_rounds_of(summaries)
    return f"AUC over {rounds_span(k)} (all methods)" if k else None


def _stat(a: Stat) -> str:
    return f"{a.mean:.2f} ± {a.std:.2f}"


def auc_markdown(summaries: Sequence[MethodSummary], dataset: str) -> str:
    """The AUC table. When the methods reached different rounds, the AUC column is over the rounds all
    reached (the figure's legend too) and a column marked * gives each method's AUC over its own rounds."""
    weighted = ", weighted by the annotators' time" if _axis(summaries) == X_SECONDS else ""
    heading = auc_heading(summaries)
    k = common_rounds_of(summaries)
    auc_cols = f"{heading} | AUC over own rounds*" if heading else "AUC"
    rule = "|---" * (2 if heading else 1)
    if _classification(summaries):
        over = (f"over the rounds it ran within {rounds_span(k)}, which every method reached" if heading
                else "over the rounds it ran")
        title = (f"AUC of test accuracy (%) on {dataset}{weighted}: mean ± std (ddof 0) over seeds, each seed's "
                 f"AUC {over}; stopped: each seed's last round (0-based) and why")
        lines = [title, "",
                 f"| method | {auc_cols} | seeds | rounds | stopped |", f"|---{rule}|---|---|---|"]
        for s in summaries:
            aucs = f"{_stat(s.auc)} | {_stat(s.own_auc)}" if heading else _stat(s.auc)
            lines.append(f"| {s.method} | {aucs} | {len(s.seeds)} | {_rounds_range(s)} | {', '.join(s.stops)} |")
    else:
        over = f", over {rounds_span(k)}, which every method reached" if heading else ""
        lines = [f"AUC of test Dice (%) on {dataset}{weighted}: mean ± std (ddof 0) over seeds{over}", "",
                 f"| method | {auc_cols} | seeds | rounds |", f"|---{rule}|---|---|"]
        for s in summaries:
            aucs = f"{_stat(s.auc)} | {_stat(s.own_auc)}" if heading else _stat(s.auc)
            lines.append(f"| {s.method} | {aucs} | {len(s.seeds)} | {len(s.rows)} |")
    if heading:
        lines += ["", ("*: over every round the method reached (rounds): not comparable between methods that "
                       "reached different rounds.")]
    notes = [note for s in summaries for note in s.notes]
    if notes:
        lines += ["", *(f"Note: {note}." for note in notes)]
    return "\n".join(lines) + "\n"


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def auc_csv(summaries: Sequence[MethodSummary]) -> str:
    """auc_*: the AUC of the legend. When the methods reached different rounds, auc_rounds names the rounds
    it is over (those every method reached) and own_auc_* give each method's AUC over its own rounds."""
    k = common_rounds_of(summaries)
    own_header = ["auc_rounds", "own_auc_mean", "own_auc_std", "own_seed_aucs"] if k else []

    def own(s: MethodSummary) -> list[Any]:
        a = s.own_auc
        return [f"0-{k - 1}", _fmt(a.mean, 4), _fmt(a.std, 4),
                " ".join(f"{x:.4f}" for x in s.own_seed_aucs or s.seed_aucs)] if k else []

    if _classification(summaries):
        return _csv_text(["method", "auc_mean", "auc_std", "n_seeds", "n_rounds", "seed_aucs", "seed_rounds",
                          "stopped", *own_header],
                         ([s.method, _fmt(s.auc.mean, 4), _fmt(s.auc.std, 4), len(s.seeds), len(s.rows),
                           " ".join(f"{a:.4f}" for a in s.seed_aucs), " ".join(str(n) for n in s.seed_rounds),
                           ", ".join(s.stops), *own(s)] for s in summaries))
    return _csv_text(["method", "auc_mean", "auc_std", "n_seeds", "n_rounds", "seed_aucs", *own_header],
                     ([s.method, _fmt(s.auc.mean, 4), _fmt(s.auc.std, 4), len(s.seeds), len(s.rows),
                       " ".join(f"{a:.4f}" for a in s.seed_aucs), *own(s)] for s in summaries))


def rounds_csv(summaries: Sequence[MethodSummary]) -> str:
    if _classification(summaries):
        return _rounds_csv_classification(summaries)
    header = ["method", "round", "n_labelled", X_COLUMN[_axis(summaries)], "test_dice_mean", "test_dice_std",
              "valid_dice_mean", "valid_dice_std", "test_acc_mean", "test_acc_std", "pseudo_dice_mean",
              "pseudo_dice_std", "n_seeds"]
    rows = ([s.method, row.round, _fmt(row.n_labelled.mean, 1), _fmt(row.x.mean), _fmt(row.test_dice.mean, 4),
             _fmt(row.test_dice.std, 4), _fmt(row.valid_dice.mean, 4), _fmt(row.valid_dice.std, 4),
             _fmt(row.test_acc.mean, 4), _fmt(row.test_acc.std, 4), _fmt(row.pseudo_dice.mean, 4),
             _fmt(row.pseudo_dice.std, 4), row.test_dice.n]
            for s in summaries for row in s.rows)
    return _csv_text(header, rows)


def _rounds_csv_classification(summaries: Sequence[MethodSummary]) -> str:
    """Accuracy per round; n_seeds: the seeds that ran the round (the mean and std are over them)."""
    seconds = _axis(summaries) == X_SECONDS
    header = ["method", "round", "n_labelled", "percent_labelled", *(["annotation_seconds"] if seconds else []),
              "test_acc_mean", "test_acc_std", "valid_acc_mean", "valid_acc_std", "n_seeds"]
    rows = ([s.method, row.round, _fmt(row.n_labelled.mean, 1), _fmt(row.percent_labelled.mean),
             *([_fmt(row.x.mean)] if seconds else []), _fmt(row.test_acc.mean, 4), _fmt(row.test_acc.std, 4),
             _fmt(row.valid_acc.mean, 4), _fmt(row.valid_acc.std, 4), row.test_acc.n]
            for s in summaries for row in s.rows)
    return _csv_text(header, rows)


# ------------------------------------------------------------------------------------------------
# Figures
# ------------------------------------------------------------------------------------------------
def _x_ticks(ax: Any, summaries: Sequence[MethodSummary]) -> None:
    """Ticks at the rounds' mean %, labelled rounded, thinned to a readable number. Seconds keep
    matplotlib's ticks: methods spend different times per round, so no method's rounds fit all."""
    if _axis(summaries) == X_SECONDS:
        return
    longest = max((s for s in summaries if not s.single_round), key=lambda s: len(s.rows), default=None)
    if longest is None:
        if _axis(summaries) != X_LABELLED:
            ax.set_xlim(0, 100)
        return
    xs = [row.x.mean for row in longest.rows]
    step = max(1, math.ceil(len(xs) / MAX_TICKS))
    ax.set_xticks(xs[::step])
    ax.set_xticklabels([f"{round(x)}" for x in xs[::step]])


def colours(summaries: Sequence[MethodSummary]) -> dict[str, Any]:
    """One colour per method, the same in every figure of a dataset; distinct for up to 20 methods
    (the default cycle repeats after 10, and every strategy may be on one figure)."""
    palette = [f"C{i}" for i in range(10)] if len(summaries) <= 10 else list(colormaps["tab20"].colors)
    return {s.method: palette[i % len(palette)] for i, s in enumerate(summaries)}


def _curve(ax: Any, summary: MethodSummary, stat: str, label: str, colour: str, all_seeds: bool = False) -> None:
    """Mean line and ± std band; with all_seeds, the line turns dotted (its own unlabelled line) from the
    last round that every seed of the summary ran, so that a mean over fewer seeds reads as such."""
    pairs = [(row.x.mean, getattr(row, stat)) for row in summary.rows if getattr(row, stat).n]
    x = np.array([p[0] for p in pairs])
    mean = np.array([p[1].mean for p in pairs])
    std = np.array([p[1].std for p in pairs])
    full = sum(1 for p in pairs if p[1].n == len(summary.seeds)) if all_seeds else len(pairs)
    ax.plot(x[:full], mean[:full], marker="o", markersize=3, linewidth=1.5, label=label, color=colour)
    if full < len(pairs):
        start = max(full - 1, 0)
        ax.plot(x[start:], mean[start:], marker="o", markersize=3, linewidth=1.5, linestyle=":", color=colour,
                label=f"_{summary.method}: fewer seeds")
    ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.2, linewidth=0)


def _test_figure(summaries: Sequence[MethodSummary], dataset: str, stat: str, name: str,
                 all_seeds: bool = False) -> Figure:
    """The test metric `stat` of RoundRow (named `name`) against the summaries' axis: a band per AL
    method, flat lines for WSL and Full_sup."""
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colour = colours(summaries)
    for s in summaries:
        a = s.auc
        label = f"{s.method} (AUC {a.mean:.2f} ± {a.std:.2f})"
        if s.single_round:
            row = getattr(s.rows[0], stat)
            ax.axhline(row.mean, linestyle="--", linewidth=1.5, label=label, color=colour[s.method])
            ax.axhspan(row.mean - row.std, row.mean + row.std, color=colour[s.method], alpha=0.12, linewidth=0)
        else:
            _curve(ax, s, stat, label, colour[s.method], all_seeds)
    _x_ticks(ax, summaries)
    ax.set_xlabel(X_LABEL[_axis(summaries)])
    ax.set_ylabel(f"{name} (%)")
    dotted = all_seeds and any(getattr(row, stat).n < len(s.seeds) for s in summaries for row in s.rows)
    ax.set_title(f"{dataset}: {name}, mean ± std over {_seed_count(summaries)} seeds"
                 + ("\n(dotted: rounds that only some seeds ran)" if dotted else ""))
    ax.grid(alpha=0.3)
    # Methods that reached different rounds: every AUC is over the rounds all reached, and the legend says so.
    heading = auc_heading(summaries)
    ax.legend(fontsize=8, loc="best", **({"title": heading, "title_fontsize": 8} if heading else {}))
    fig.tight_layout()
    return fig


def dice_figure(summaries: Sequence[MethodSummary], dataset: str) -> Figure:
    """Test Dice against the summaries' axis: a band per AL method, flat lines for WSL and Full_sup."""
    return _test_figure(summaries, dataset, "test_dice", "test Dice")


def acc_figure(summaries: Sequence[MethodSummary], dataset: str) -> Figure:
    """Test accuracy of classification runs against the summaries' axis, each round over the seeds that
    ran it (dotted where some seeds had stopped); Full_sup is a flat line."""
    return _test_figure(summaries, dataset, "test_acc", "test accuracy", all_seeds=True)


def pseudo_figure(summaries: Sequence[MethodSummary], dataset: str) -> Figure:
    """Dice of the pseudo-masks against the true masks, per round (the paper's Fig. 6)."""
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colour = colours(summaries)
    shown = [s for s in summaries if s.has_pseudo]
    for s in shown:
        _curve(ax, s, "pseudo_dice", s.method, colour[s.method])
    _x_ticks(ax, shown)
    ax.set_xlabel(X_LABEL[_axis(shown)])
    ax.set_ylabel("pseudo-mask Dice (%)")
    ax.set_title(f"{dataset}: pseudo-mask Dice, mean ± std over {_seed_count(shown)} seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=path.suffix.lstrip("."), dpi=150))


def save_text(path: Path, text: str) -> None:
    atomic_write_text(path, text)


# ------------------------------------------------------------------------------------------------
# Files
# ------------------------------------------------------------------------------------------------
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
    """The run's finished rounds 0..k-1 (a gap ends the run: later rounds are not comparable)."""
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
               tag=config_tag(cfg))


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


def write_outputs(summaries: Sequence[MethodSummary], dataset: str, out: Path) -> list[Path]:
    """Figures and tables of one dataset; returns the paths written."""
    written = []
    classification = _classification(summaries)
    fig, stem = (acc_figure(summaries, dataset), "acc-test") if classification else \
        (dice_figure(summaries, dataset), "dice-test")
    for suffix in ("png", "pdf"):
        save_figure(fig, out / f"{dataset}-{stem}.{suffix}")
        written.append(out / f"{dataset}-{stem}.{suffix}")
    if not classification and any(s.has_pseudo for s in summaries):
        save_figure(pseudo_figure(summaries, dataset), out / f"{dataset}-pseudo-dice.png")
        written.append(out / f"{dataset}-pseudo-dice.png")
    for name, text in ((f"{dataset}-auc.md", auc_markdown(summaries, dataset)),
                       (f"{dataset}-auc.csv", auc_csv(summaries)),
                       (f"{dataset}-rounds.csv", rounds_csv(summaries))):
        save_text(out / name, text)
        written.append(out / name)
    return written


def resolve(path: Path) -> Path:
    """Relative paths are taken from the repository root, as main.py takes exp_root."""
    path = path.expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = _Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="dataset name of the runs (config.yaml 'dataset')")
    parser.add_argument("--exp_root", type=Path, default=Path("exps"),
                        help="folder searched for run folders (relative: from the repository root; default exps)")
    parser.add_argument("--debug_subfolder", default=None,
                        help="only runs with this debug_subfolder ('' for none; default: any)")
    parser.add_argument("--split", type=int, default=0, help="split of the runs (default 0)")
    parser.add_argument("--fold", type=int, default=0, help="fold of the runs (default 0)")
    parser.add_argument("--runs", type=Path, nargs="+", default=None, metavar="DIR",
                        help="run folders, or folders holding them, read instead of searching --exp_root")
    parser.add_argument("--out", type=Path, default=Path("paper"),
                        help="output folder (relative: from the repository root; default paper)")
    parser.add_argument("--x", choices=X_AXES, default=X_AUTO,
                        help="x-axis of every curve: %% of images labelled, %% of pixels annotated, or the "
                             "annotators' seconds (Label Studio lead_time); auto: pixels when some run "
                             "annotates regions, else images; classification runs: the number of labelled "
                             "images (default auto)")
    parser.add_argument("--group_by", choices=GROUP_BY, default=GROUP_METHOD,
                        help="one curve per method (al_type), or per run id less its -seed_<s> (exp_id, e.g. "
                             "gen_configs.py --exp_tag), so that ablations of one method are drawn side by side "
                             "(default method)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with exit_on_error(NoRunsError, RunStateError, OSError):
        roots = [resolve(p) for p in args.runs] if args.runs else [resolve(args.exp_root)]
        summaries = summarise(load_runs(roots, args.dataset, args.split, args.fold, args.debug_subfolder), args.x,
                              args.group_by)
        out = resolve(args.out)
        written = write_outputs(summaries, args.dataset, out)
    print(f"figures and tables of {args.dataset} written to {out}:")
    for path in written:
        print(f"  {path.name}")
    print()
    print(auc_markdown(summaries, args.dataset), end="")


if __name__ == "__main__":
    main()
