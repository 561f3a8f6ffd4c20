"""Figures of a dataset's summaries: the test metric per round, and Label_prop's pseudo-mask Dice."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import constants as C
from atomic_io import atomic_write, atomic_write_text
from report.aggregate import X_LABEL, X_LABELLED, X_SECONDS, MethodSummary
from report.tables import NOT_COMPARABLE, NOT_COMPARABLE_MARK, _axis, _name, _seed_count, auc_heading

MAX_TICKS = 12


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
    method, flat lines for WSL and Full_sup; rounds whose mean fell are marked and the title counts the
    warnings of report.checks. The legend sits beside the axes, so it never covers a curve."""
    fig = Figure(figsize=(10, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colour = colours(summaries)
    for s in summaries:
        a = s.auc
        label = f"{_name(s)} (AUC {a.mean:.2f} ± {a.std:.2f})"
        if s.single_round:
            row = getattr(s.rows[0], stat)
            ax.axhline(row.mean, linestyle="--", linewidth=1.5, label=label, color=colour[s.method])
            ax.axhspan(row.mean - row.std, row.mean + row.std, color=colour[s.method], alpha=0.12, linewidth=0)
        else:
            _curve(ax, s, stat, label, colour[s.method], all_seeds)
    _mark_drops(ax, summaries, stat)
    if any(s.more_pixels for s in summaries):
        ax.plot([], [], " ", label=f"{NOT_COMPARABLE_MARK} {NOT_COMPARABLE}".replace(": ", ":\n", 1))
    _x_ticks(ax, summaries)
    ax.set_xlabel(X_LABEL[_axis(summaries)])
    ax.set_ylabel(f"{name} (%)")
    dotted = all_seeds and any(getattr(row, stat).n < len(s.seeds) for s in summaries for row in s.rows)
    count = sum(len(s.warnings) for s in summaries)
    ax.set_title(f"{dataset}: {name}, mean ± std over {_seed_count(summaries)} seeds"
                 + ("\n(dotted: rounds that only some seeds ran)" if dotted else "")
                 + (f"\nWARNING: {count} warning{'s' if count > 1 else ''}, see the AUC table" if count else ""))
    ax.grid(alpha=0.3)
    # Methods that reached different rounds: every AUC is over the rounds all reached, and the legend says so.
    heading = auc_heading(summaries)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              **({"title": heading, "title_fontsize": 8} if heading else {}))
    return fig


def _mark_drops(ax: Any, summaries: Sequence[MethodSummary], stat: str) -> None:
    """A red triangle on each round whose mean fell (report.checks), labelled once in the legend."""
    points = [(row.x.mean, getattr(row, stat).mean) for s in summaries for row in s.rows
              if row.round in s.drop_rounds and getattr(row, stat).n]
    if points:
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, linestyle="none", marker="v", markersize=9, markerfacecolor="none", markeredgecolor="red",
                markeredgewidth=1.5, label="mean fell while labels grew")


# Per task, the figure of its test metric: row field, axis label, file stem, and whether each round is drawn over
# the seeds that ran it (classification seeds stop at different rounds).
TASK_FIGURE = {C.TASK_JOINT: ("test_dice", "test Dice", "dice-test", False),
               C.TASK_CLASSIFICATION: ("test_acc", "test accuracy", "acc-test", True),
               C.TASK_SEGMENTATION: ("test_score", "test mIoU", "miou-test", False)}


def score_figure(summaries: Sequence[MethodSummary], dataset: str) -> tuple[Figure, str]:
    """The task's test metric against the summaries' axis, and the file stem it is saved under."""
    stat, label, stem, all_seeds = TASK_FIGURE[summaries[0].task if summaries else C.TASK_JOINT]
    return _test_figure(summaries, dataset, stat, label, all_seeds=all_seeds), stem


def dice_figure(summaries: Sequence[MethodSummary], dataset: str) -> Figure:
    """Test Dice against the summaries' axis: a band per AL method, flat lines for WSL and Full_sup."""
    return _test_figure(summaries, dataset, "test_dice", "test Dice")


def acc_figure(summaries: Sequence[MethodSummary], dataset: str) -> Figure:
    """Test accuracy of classification runs against the summaries' axis, each round over the seeds that
    ran it (dotted where some seeds had stopped); Full_sup is a flat line."""
    return _test_figure(summaries, dataset, "test_acc", "test accuracy", all_seeds=True)


def pseudo_figure(summaries: Sequence[MethodSummary], dataset: str) -> Figure:
    """Dice of the pseudo-masks against the true masks, per round (the paper's Fig. 6)."""
    fig = Figure(figsize=(9, 4.5), layout="constrained")
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
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    return fig


def save_figure(fig: Figure, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=path.suffix.lstrip("."), dpi=150))


def save_text(path: Path, text: str) -> None:
    atomic_write_text(path, text)
