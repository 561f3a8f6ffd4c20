"""Qualitative figures of the joint task: what the masks behind the Dice curves look like.

`<ds>-qualitative.{png,pdf}`: for N test images, one block each; a row per stage-2 method, columns
image / true mask / the method's prediction at each round (red over the image, the true outline in
yellow, titled with the round and that image's test Dice). The predictions are the round's saved
`round_<r>/test_masks/<id>.png` (the masks as measured, at the round's threshold), so nothing is
predicted again. `<ds>-qualitative.csv` lists each chosen image, its rule and every Dice drawn.
`<ds>-pseudo-masks.{png,pdf}` (Label_prop): its pseudo-masks (train pool images, never test images)
per round, with their Dice against the true mask.

Rules (the same images for every method):
- methods: the stage-2 methods drawn (not WSL, which writes no test mask, nor Full_sup, one round on
  every label: their Dice are the curves' flat lines), over rounds 0..k-1, the rounds all of them
  reached (as the AUCs);
- reference: `--qualitative_reference`, default Label_prop when drawn, else the first method drawn;
- images: the test images ranked by the reference's per-image test Dice at round k-1, averaged over
  its seeds, best first, ties by id; choose_images takes evenly spaced positions of that ranking;
- pictures: of one seed, the smallest seed that every method drawn has (said in the title).
"""

from __future__ import annotations

import csv
import io
import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import constants as C
from al.request import overlay
from al.state import MASKS_DIR, TEST_MASKS_DIR, RunFolder, RunStateError
from data.decoded import decode_records
from data.folds import load_fold
from engine.metrics import dice
from parseit import resolve_path, resource_path
from report.aggregate import MethodSummary, Run
from report.figures import save_figure, save_text
from report.loading import read_config

CELL_INCHES = 1.5
TRUE_OUTLINE = "yellow"
PREDICTED_OUTLINE = "red"
FONT = 7
TITLE_CHARS_PER_INCH = 13   # of the suptitle's font: longer lines are wrapped to the figure's width
# What to do about a round without its test masks or per-image Dice.
_RERUN = ("it was written before rounds kept their test masks; run its rounds again (main.py --redo_round) "
          "or draw the round's masks with predict.py")


class QualitativeError(ValueError):
    """The qualitative figure cannot be drawn from these runs as asked (one line, exit code 2)."""


@dataclass(frozen=True)
class Pick:
    """One chosen image: its rule ("best", "median", "worst" or "rank 3/24"), 1-based rank, score."""

    id: str
    rule: str
    rank: int
    score: float


def choose_images(scores: Mapping[str, float], n: int) -> list[Pick]:
    """min(n, len(scores)) images at evenly spaced positions of the ranking (score descending, ties by
    id): n = 1 the median, n = 2 best and worst, n = 3 best, median and worst, more: quantiles between.
    Position k of n is round(k (M - 1) / (n - 1)), halves up, so for an even M the median is the lower
    of the two middle images; with n <= M the positions are distinct, and n > M is clipped to M."""
    if n < 1:
        raise ValueError(f"choose_images needs n >= 1, not {n}")
    ranked = sorted(scores, key=lambda i: (-scores[i], i))
    m = len(ranked)
    n = min(n, m)
    fractions = [0.5] if n == 1 else [k / (n - 1) for k in range(n)]
    picks = []
    for q in fractions:
        position = math.floor(q * (m - 1) + 0.5)
        rule = "best" if position == 0 else "worst" if position == m - 1 else "median" if q == 0.5 \
            else f"rank {position + 1}/{m}"
        picks.append(Pick(ranked[position], rule, position + 1, scores[ranked[position]]))
    return picks


@dataclass(frozen=True)
class Plan:
    """What the qualitative figure shows: the methods' runs of one seed, the rounds and the images."""

    dataset: str
    reference: str
    reference_seeds: tuple[int, ...]
    seed: int
    rounds: int
    n_test: int
    picks: tuple[Pick, ...]
    runs: tuple[tuple[str, Run], ...]   # (method drawn, its run of `seed`)


def reference_method(active: Sequence[MethodSummary], requested: str | None) -> MethodSummary:
    """The method whose Dice choose the images: the one asked for, else Label_prop, else the first drawn."""
    names = [s.method for s in active]
    if requested is not None and requested not in names:
        raise QualitativeError(f"--qualitative_reference {requested} is not a stage-2 method drawn: "
                               f"choose one of {', '.join(names)}")
    wanted = requested or (C.LABEL_PROP if C.LABEL_PROP in names else names[0])
    return active[names.index(wanted)]


def per_image_dice(run: Run, r: int) -> dict[str, float]:
    """Round r's test Dice of every test image (0..1), refused for rounds that predate them."""
    scores = run.states[r].test_dice_per_image
    if not scores:
        raise RunStateError(f"{run.folder} round {r} has no per-image test Dice: {_RERUN}")
    return dict(scores)


def make_plan(summaries: Sequence[MethodSummary], groups: Mapping[str, Mapping[int, Run]], n: int,
              requested: str | None, dataset: str) -> Plan:
    """The methods, seed, rounds and images of the figure, by the rules of this module's docstring."""
    active = [s for s in summaries if not s.single_round]
    if not active:
        raise QualitativeError("--qualitative draws stage-2 methods, and only WSL / Full_sup runs were found")
    ref = reference_method(active, requested)
    k = min(len(s.rows) for s in active)
    common = set.intersection(*(set(s.seeds) for s in active))
    if not common:
        raise QualitativeError("--qualitative draws one seed that every method has, and the methods share "
                               "none: " + "; ".join(f"{s.method} {list(s.seeds)}" for s in active))
    tables = [per_image_dice(groups[ref.method][seed], k - 1) for seed in ref.seeds]
    ids = set.intersection(*(set(t) for t in tables))
    mean = {i: float(np.mean([t[i] for t in tables])) for i in ids}
    seed = min(common)
    return Plan(dataset, ref.method, ref.seeds, seed, k, len(ids), tuple(choose_images(mean, n)),
                tuple((s.method, groups[s.method][seed]) for s in active))


def load_samples(folder: Path, ids: Sequence[str], subset: str) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """(H, W, 3) image and 0/1 true mask (None without one) of the run's `subset` images, read as training
    reads them (the run's config.yaml: data_root, fold_folder, split, fold)."""
    cfg = read_config(folder)
    fold = load_fold(resource_path(cfg["fold_folder"], cfg["dataset"]), cfg["dataset"], int(cfg["split"]), int(cfg["fold"]))
    records = {r.id: r for r in getattr(fold, subset)}
    unknown = [i for i in ids if i not in records]
    if unknown:
        raise RunStateError(f"{folder}: image {unknown[0]} is not in the {subset} set of its fold: "
                            "the fold changed since the run; draw it with the fold it ran on")
    decoded = decode_records([records[i] for i in ids], resolve_path(cfg["data_root"]), cfg["dataset"],
                             fold.encoding, progress=False)
    return {s.id: (s.image.numpy().transpose(1, 2, 0), None if s.mask is None else s.mask.numpy())
            for s in decoded}


def read_masks(run: Run, r: int, ids: Sequence[str], kind: str = TEST_MASKS_DIR) -> dict[str, np.ndarray]:
    """The round's saved masks of these images (0/1); a round without the folder is named with what to do."""
    folder = RunFolder(run.folder)
    if not (folder.round_dir(r) / kind).is_dir():
        raise RunStateError(f"{run.folder} round {r} has no {kind}/: {_RERUN}")
    return {i: folder.read_mask(r, i, kind) for i in ids}


def mask_dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Dice of one binary mask against the true one, in %, as the rounds measure it (engine.metrics.dice)."""
    return 100 * float(dice(torch.from_numpy(prediction)[None], torch.from_numpy(truth)[None])[0])


def _cell(ax: Any, picture: np.ndarray, title: str = "", outlines: Sequence[tuple[np.ndarray, str]] = ()) -> None:
    """One picture without ticks, with the outlines of (mask, colour) over it: a filled mask alone is lost
    on an object of its colour."""
    ax.imshow(picture, interpolation="nearest")
    for mask, colour in outlines:
        if mask.any() and not mask.all():
            ax.contour(mask, levels=[0.5], colors=colour, linewidths=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=FONT)


def _outlines(predicted: np.ndarray, truth: np.ndarray) -> tuple[tuple[np.ndarray, str], ...]:
    return (predicted, PREDICTED_OUTLINE), (truth, TRUE_OUTLINE)


def _grid(rows: int, columns: int, title: str) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(CELL_INCHES * columns, CELL_INCHES * rows + 0.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    width = int(CELL_INCHES * columns * TITLE_CHARS_PER_INCH)
    fig.suptitle("\n".join(textwrap.fill(line, width) for line in title.splitlines()), fontsize=FONT + 1)
    return fig, axes


def _image_columns(axes: np.ndarray, row: int, image: np.ndarray, truth: np.ndarray, heading: str) -> None:
    """The image (titled `heading`) and its true mask, in the first two columns of a row."""
    for ax in axes[row, :2]:
        ax.set_axis_on()
    _cell(axes[row, 0], image, heading)
    _cell(axes[row, 1], overlay(image, truth), "true mask")


def qualitative_figure(plan: Plan, samples: Mapping[str, tuple[np.ndarray, np.ndarray]],
                       masks: Mapping[tuple[str, int], Mapping[str, np.ndarray]]) -> Figure:
    """One block per chosen image: rows = methods, columns = image, true mask, prediction per round
    (masks[(method, r)][id]); the image and true mask are drawn once, in the block's first row."""
    n_methods = len(plan.runs)
    fig, axes = _grid(len(plan.picks) * n_methods, 2 + plan.rounds, (
        f"{plan.dataset}: test images ranked by {plan.reference}'s test Dice at round {plan.rounds - 1} (mean over "
        f"seed{'s' if len(plan.reference_seeds) > 1 else ''} {', '.join(map(str, plan.reference_seeds))}); predictions of seed {plan.seed}\n"
        f"red: predicted mask; yellow outline: true mask; titles: round and that image's test Dice (%)"))
    for b, pick in enumerate(plan.picks):
        image, truth = samples[pick.id]
        top = b * n_methods
        _image_columns(axes, top, image, truth, f"{pick.id}: {pick.rule}\n{plan.reference} {100 * pick.score:.1f}")
        for m, (method, run) in enumerate(plan.runs):
            for r in range(plan.rounds):
                ax = axes[top + m, 2 + r]
                ax.set_axis_on()
                score = 100 * run.states[r].test_dice_per_image[pick.id]
                predicted = masks[(method, r)][pick.id]
                _cell(ax, overlay(image, predicted), f"r{r}: {score:.1f}", _outlines(predicted, truth))
            axes[top + m, 2].set_ylabel(method, fontsize=FONT)
    return fig


def qualitative_csv(plan: Plan) -> str:
    """One line per chosen image, method and round: the rule, the reference's mean Dice and the Dice drawn."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image", "rule", "rank", "n_test", "reference", "reference_round", "reference_dice", "seed",
                     "method", "round", "dice"])
    for pick in plan.picks:
        for method, run in plan.runs:
            for r in range(plan.rounds):
                writer.writerow([pick.id, pick.rule, pick.rank, plan.n_test, plan.reference, plan.rounds - 1,
                                 f"{100 * pick.score:.4f}", plan.seed, method, r,
                                 f"{100 * run.states[r].test_dice_per_image[pick.id]:.4f}"])
    return buffer.getvalue()


def saved_test_masks(plan: Plan) -> dict[tuple[str, int], dict[str, np.ndarray]]:
    """Every (method, round)'s saved masks of the chosen images, checked before anything is drawn."""
    ids = [p.id for p in plan.picks]
    for method, run in plan.runs:
        for r in range(plan.rounds):
            missing = [i for i in ids if i not in run.states[r].test_dice_per_image]
            if missing:
                raise RunStateError(f"{run.folder} round {r} has no test Dice of image {missing[0]}: {_RERUN}")
    return {(method, r): read_masks(run, r, ids) for method, run in plan.runs for r in range(plan.rounds)}


def pseudo_masks_figure(plan: Plan, n: int) -> Figure | None:
    """Label_prop's pseudo-masks (train pool images) of the plan's seed: the images pseudo-labelled at the
    last round drawn that has any, chosen by their pseudo-mask Dice as choose_images does, then each
    round's pseudo-mask of them (blank where the image was not pseudo-labelled). None without Label_prop
    or pseudo-masks."""
    run = next((run for method, run in plan.runs if run.method == C.LABEL_PROP), None)
    if run is None:
        return None
    listed = {r: sorted(p.stem for p in (run.folder / f"round_{r:03d}" / MASKS_DIR).glob("*.png"))
              for r in range(plan.rounds)}
    last = max((r for r, ids in listed.items() if ids), default=None)
    if last is None:
        return None
    samples = load_samples(run.folder, listed[last], "train")
    known = [i for i in listed[last] if samples[i][1] is not None]   # a person's pool may have no true mask
    scores = {i: mask_dice(m, samples[i][1]) for i, m in read_masks(run, last, known, MASKS_DIR).items()}
    picks = choose_images(scores, n) if scores else []
    fig, axes = _grid(max(len(picks), 1), 2 + plan.rounds, (
        f"{plan.dataset}: {run.method} pseudo-masks of seed {plan.seed} (train pool images, trained on in the next "
        f"round), chosen by their Dice at round {last}\nred: pseudo-mask; yellow outline: true mask; "
        "titles: round and the pseudo-mask's Dice against the true mask (%)"))
    for row, pick in enumerate(picks):
        image, truth = samples[pick.id]
        _image_columns(axes, row, image, truth, f"{pick.id}: {pick.rule}")
        for r in range(plan.rounds):
            if pick.id in listed[r]:
                mask = read_masks(run, r, [pick.id], MASKS_DIR)[pick.id]
                axes[row, 2 + r].set_axis_on()
                _cell(axes[row, 2 + r], overlay(image, mask), f"r{r}: {mask_dice(mask, truth):.1f}",
                      _outlines(mask, truth))
    return fig


def write_qualitative(summaries: Sequence[MethodSummary], groups: Mapping[str, Mapping[int, Run]], n: int,
                      requested: str | None, dataset: str, out: Path) -> list[Path]:
    """The qualitative figure, its csv and Label_prop's pseudo-mask figure; returns the paths written."""
    plan = make_plan(summaries, groups, n, requested, dataset)
    masks = saved_test_masks(plan)
    samples = load_samples(plan.runs[0][1].folder, [p.id for p in plan.picks], "test")
    written = []
    figures = {"qualitative": qualitative_figure(plan, samples, masks), "pseudo-masks": pseudo_masks_figure(plan, n)}
    for stem, fig in figures.items():
        for suffix in ("png", "pdf") if fig is not None else ():
            save_figure(fig, out / f"{dataset}-{stem}.{suffix}")
            written.append(out / f"{dataset}-{stem}.{suffix}")
    save_text(out / f"{dataset}-qualitative.csv", qualitative_csv(plan))
    return [*written, out / f"{dataset}-qualitative.csv"]
