"""Active-learning curves and AUC table of every run of one dataset.

    python plot_active_learning_curves.py --dataset glas
    python plot_active_learning_curves.py --dataset synthetic --exp_root /tmp/exps --out paper/
    python plot_active_learning_curves.py --dataset glas --x seconds

Runs are found by their own config.yaml (dataset, split, fold, debug_subfolder), under --exp_root
or in the folders given with --runs, and grouped by method (al_type, marked "(regions)" for
region-level annotation) and seed (MYSEED). Only finished rounds count (`round_<rrr>/state.json`;
`round_<rrr>.partial/` is ignored), and of a method only the rounds that every one of its seeds has
finished. Writes into --out: `<ds>-dice-test.{png,pdf}`, `<ds>-pseudo-dice.png` (Label_prop),
`<ds>-auc.{md,csv}`, `<ds>-rounds.csv`.

--x chooses what the curves are drawn against, the same for every method (WSL and Full_sup are flat
lines whatever it is): `images`, the % of training images labelled; `pixels`, the % of training
pixels annotated (regions revealed included); `seconds`, the annotators' cumulative time, which only
rounds answered through a Label Studio export record (lead_time), so every other method's run must
have it in every round. `auto` (the default) is `pixels` when some run annotates regions, else `images`.
The AUC is the mean height of the test-Dice curve, in %: over rounds with unit spacing for images and
pixels (as the paper; rounds are the budget steps), and weighted by the seconds each round took for
seconds (trapezoid over the seconds divided by the seconds spanned, per seed).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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
# Per drawn axis: the x column of <ds>-rounds.csv and the figures' axis label.
X_COLUMN = {X_IMAGES: "percent_labelled", X_PIXELS: "percent_pixels", X_SECONDS: "annotation_seconds"}
X_LABEL = {X_IMAGES: "labelled training images (%)", X_PIXELS: "annotated training pixels (%)",
           X_SECONDS: "annotators' time (s)"}
# Runs named in full in an error line; more are counted.
MAX_NAMED_RUNS = 5


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


@dataclass(frozen=True)
class MethodSummary:
    method: str
    seeds: tuple[int, ...]
    rows: tuple[RoundRow, ...]
    seed_aucs: tuple[float, ...]
    notes: tuple[str, ...]
    x: str = X_IMAGES    # the axis drawn: X_IMAGES, X_PIXELS or X_SECONDS

    @property
    def auc(self) -> Stat:
        return mean_std(self.seed_aucs)

    @property
    def single_round(self) -> bool:
        return self.method in C.SINGLE_ROUND_METHODS

    @property
    def has_pseudo(self) -> bool:
        return any(row.pseudo_dice.n for row in self.rows)


def group_runs(runs: Iterable[Run]) -> dict[str, dict[int, Run]]:
    """{method: {seed: run}}; two runs of one method and seed are ambiguous and rejected."""
    groups: dict[str, dict[int, Run]] = defaultdict(dict)
    for run in runs:
        other = groups[run.method].get(run.seed)
        if other is not None:
            raise RunStateError(f"two runs of {run.method} seed {run.seed}: {other.folder} and {run.folder}; "
                                "choose one with --runs or --debug_subfolder")
        groups[run.method][run.seed] = run
    return groups


def method_order(methods: Iterable[str]) -> list[str]:
    """The project's method order, each method's region-level runs after it, then any other name."""
    names = set(methods)
    known = [n for m in C.METHODS for n in (m, f"{m} (regions)") if n in names]
    return known + sorted(names - set(known))


def x_value(state: RoundState, x: str) -> float | None:
    """The x of a round: % of images pixel-labelled, % of pixels annotated (files that predate pixel
    counts give their % of images) or the annotators' seconds so far (None when not recorded)."""
    if x == X_SECONDS:
        return None if state.annotation_seconds is None else float(state.annotation_seconds)
    if x == X_PIXELS and state.percent_pixels is not None:
        return state.percent_pixels
    return state.percent_labelled


def x_axis(runs: Sequence[Run], x: str) -> str:
    """The axis to draw for --x: auto is pixels when some run picks regions, else images. Seconds need
    every round of every run but WSL's and Full_sup's (flat lines) to carry the annotators' time:
    RunStateError, naming the runs without, otherwise."""
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


def summarise_method(method: str, runs: Mapping[int, Run], x: str = X_IMAGES) -> MethodSummary | None:
    """Per-round mean ± std over seeds on the rounds every seed finished; None if no seed finished one."""
    notes = [f"{method} seed {s} has no finished round: left out" for s, r in sorted(runs.items()) if not r.states]
    kept = {s: r for s, r in sorted(runs.items()) if r.states}
    if not kept:
        return None
    lengths = {s: len(r.states) for s, r in kept.items()}
    n = min(lengths.values())
    if len(set(lengths.values())) > 1:
        notes.append(f"{method}: seeds finished {min(lengths.values())} to {max(lengths.values())} rounds "
                     f"({', '.join(f'seed {s}: {k}' for s, k in lengths.items())}); only the {n} rounds every "
                     "seed finished count")
    rows = []
    for r in range(n):
        states = [run.states[r] for run in kept.values()]
        rows.append(RoundRow(
            round=r,
            n_labelled=mean_std(float(s.n_labelled) for s in states),
            x=mean_std(x_value(s, x) for s in states),
            test_dice=mean_std(s.metric("test", "dice_idx") for s in states),
            valid_dice=mean_std(s.metric("valid", "dice_idx") for s in states),
            test_acc=mean_std(s.metric("test", "acc") for s in states),
            pseudo_dice=mean_std(s.metric("pseudo", "dice_idx") for s in states)))
    timed = x == X_SECONDS and method not in C.SINGLE_ROUND_METHODS
    seed_aucs = tuple(auc([s.metric("test", "dice_idx") for s in run.states[:n]],
                          [x_value(s, x) for s in run.states[:n]] if timed else None)
                      for run in kept.values())
    return MethodSummary(method, tuple(kept), tuple(rows), seed_aucs, tuple(notes), x)


def summarise(runs: Iterable[Run], x: str = X_AUTO) -> list[MethodSummary]:
    """One summary per method, in the project's method order, all on the axis --x resolves to."""
    runs = list(runs)
    groups = group_runs(runs)
    axis = x_axis(runs, x)
    out = [summarise_method(m, groups[m], axis) for m in method_order(groups)]
    return [s for s in out if s is not None]


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


def auc_markdown(summaries: Sequence[MethodSummary], dataset: str) -> str:
    weighted = ", weighted by the annotators' time" if _axis(summaries) == X_SECONDS else ""
    lines = [f"AUC of test Dice (%) on {dataset}{weighted}: mean ± std (ddof 0) over seeds", "",
             "| method | AUC | seeds | rounds |", "|---|---|---|---|"]
    for s in summaries:
        a = s.auc
        lines.append(f"| {s.method} | {a.mean:.2f} ± {a.std:.2f} | {len(s.seeds)} | {len(s.rows)} |")
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
    return _csv_text(["method", "auc_mean", "auc_std", "n_seeds", "n_rounds", "seed_aucs"],
                     ([s.method, _fmt(s.auc.mean, 4), _fmt(s.auc.std, 4), len(s.seeds), len(s.rows),
                       " ".join(f"{a:.4f}" for a in s.seed_aucs)] for s in summaries))


def rounds_csv(summaries: Sequence[MethodSummary]) -> str:
    header = ["method", "round", "n_labelled", X_COLUMN[_axis(summaries)], "test_dice_mean", "test_dice_std",
              "valid_dice_mean", "valid_dice_std", "test_acc_mean", "test_acc_std", "pseudo_dice_mean",
              "pseudo_dice_std", "n_seeds"]
    rows = ([s.method, row.round, _fmt(row.n_labelled.mean, 1), _fmt(row.x.mean), _fmt(row.test_dice.mean, 4),
             _fmt(row.test_dice.std, 4), _fmt(row.valid_dice.mean, 4), _fmt(row.valid_dice.std, 4),
             _fmt(row.test_acc.mean, 4), _fmt(row.test_acc.std, 4), _fmt(row.pseudo_dice.mean, 4),
             _fmt(row.pseudo_dice.std, 4), row.test_dice.n]
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


def _curve(ax: Any, summary: MethodSummary, stat: str, label: str, colour: str) -> None:
    pairs = [(row.x.mean, getattr(row, stat)) for row in summary.rows if getattr(row, stat).n]
    x = np.array([p[0] for p in pairs])
    mean = np.array([p[1].mean for p in pairs])
    std = np.array([p[1].std for p in pairs])
    ax.plot(x, mean, marker="o", markersize=3, linewidth=1.5, label=label, color=colour)
    ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.2, linewidth=0)


def dice_figure(summaries: Sequence[MethodSummary], dataset: str) -> Figure:
    """Test Dice against the summaries' axis: a band per AL method, flat lines for WSL and Full_sup."""
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colour = colours(summaries)
    for s in summaries:
        a = s.auc
        label = f"{s.method} (AUC {a.mean:.2f} ± {a.std:.2f})"
        if s.single_round:
            row = s.rows[0].test_dice
            ax.axhline(row.mean, linestyle="--", linewidth=1.5, label=label, color=colour[s.method])
            ax.axhspan(row.mean - row.std, row.mean + row.std, color=colour[s.method], alpha=0.12, linewidth=0)
        else:
            _curve(ax, s, "test_dice", label, colour[s.method])
    _x_ticks(ax, summaries)
    ax.set_xlabel(X_LABEL[_axis(summaries)])
    ax.set_ylabel("test Dice (%)")
    ax.set_title(f"{dataset}: test Dice, mean ± std over {_seed_count(summaries)} seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


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
    return cfg


def load_run(folder: Path, cfg: Mapping[str, Any]) -> Run:
    """The run's finished rounds 0..k-1 (a gap ends the run: later rounds are not comparable)."""
    run = RunFolder(folder)
    states = []
    for r in run.done_rounds():
        if r != len(states):
            break
        state = run.read_state(r)
        if state.metric("test", "dice_idx") is None:
            raise RunStateError(f"{run.round_dir(r)}/state.json lacks the test Dice: "
                                "it was not written by main.py; delete that round and run it again")
        states.append(state)
    return Run(method=method_label(cfg), seed=int(cfg["MYSEED"]), folder=folder, states=tuple(states))


def method_label(cfg: Mapping[str, Any]) -> str:
    """The name a run is grouped and drawn under: its al_type, marked when its oracle annotates regions."""
    region = cfg.get("annotation_unit") == C.UNIT_REGION
    return f"{cfg['al_type']} (regions)" if region else str(cfg["al_type"])


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
    for folder in tqdm(folders, desc="reading runs", disable=len(folders) < PROGRESS_MIN_RUNS):
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
    fig = dice_figure(summaries, dataset)
    for suffix in ("png", "pdf"):
        save_figure(fig, out / f"{dataset}-dice-test.{suffix}")
        written.append(out / f"{dataset}-dice-test.{suffix}")
    if any(s.has_pseudo for s in summaries):
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
                             "annotates regions, else images (default auto)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with exit_on_error(NoRunsError, RunStateError, OSError):
        roots = [resolve(p) for p in args.runs] if args.runs else [resolve(args.exp_root)]
        summaries = summarise(load_runs(roots, args.dataset, args.split, args.fold, args.debug_subfolder), args.x)
        out = resolve(args.out)
        written = write_outputs(summaries, args.dataset, out)
    print(f"figures and tables of {args.dataset} written to {out}:")
    for path in written:
        print(f"  {path.name}")
    print()
    print(auc_markdown(summaries, args.dataset), end="")


if __name__ == "__main__":
    main()
