"""The AUC table (markdown and csv) and the per-round csv of a dataset's summaries."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from typing import Any

import constants as C
from report.aggregate import X_COLUMN, X_IMAGES, X_SECONDS, MethodSummary, Stat

NOT_COMPARABLE_MARK = "†"
NOT_COMPARABLE = ("annotated more pixels than an image-level method at the same round: not comparable at equal "
                  "budget (read it against the pixels axis)")


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
                 f"| method | {auc_cols} | seeds | rounds | stopped | warnings |", f"|---{rule}|---|---|---|---|"]
        for s in summaries:
            aucs = f"{_stat(s.auc)} | {_stat(s.own_auc)}" if heading else _stat(s.auc)
            lines.append(f"| {_name(s)} | {aucs} | {len(s.seeds)} | {_rounds_range(s)} | {', '.join(s.stops)} | "
                         f"{len(s.warnings)} |")
    else:
        over = f", over {rounds_span(k)}, which every method reached" if heading else ""
        metric = summaries[0].metric_name if summaries else "test Dice"
        lines = [f"AUC of {metric} (%) on {dataset}{weighted}: mean ± std (ddof 0) over seeds{over}", "",
                 f"| method | {auc_cols} | seeds | rounds | warnings |", f"|---{rule}|---|---|---|"]
        for s in summaries:
            aucs = f"{_stat(s.auc)} | {_stat(s.own_auc)}" if heading else _stat(s.auc)
            lines.append(f"| {_name(s)} | {aucs} | {len(s.seeds)} | {len(s.rows)} | {len(s.warnings)} |")
    if heading:
        lines += ["", ("*: over every round the method reached (rounds): not comparable between methods that "
                       "reached different rounds.")]
    if any(s.more_pixels for s in summaries):
        lines += ["", f"{NOT_COMPARABLE_MARK}: {NOT_COMPARABLE}."]
    notes = [note for s in summaries for note in s.notes]
    if notes:
        lines += ["", *(f"Note: {note}." for note in notes)]
    warnings = warning_lines(summaries)
    if warnings:
        lines += ["", *(f"{w}." for w in warnings)]
    return "\n".join(lines) + "\n"


def _name(summary: MethodSummary) -> str:
    """The method as the table and the legend name it, marked when its budget is not the others'."""
    return f"{summary.method} {NOT_COMPARABLE_MARK}" if summary.more_pixels else summary.method


def warning_lines(summaries: Sequence[MethodSummary]) -> list[str]:
    """One "Warning: ..." line per warning of report.checks, in the methods' order."""
    return [f"Warning: {w}" for s in summaries for w in s.warnings]


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
                          "stopped", "warnings", *own_header],
                         ([s.method, _fmt(s.auc.mean, 4), _fmt(s.auc.std, 4), len(s.seeds), len(s.rows),
                           " ".join(f"{a:.4f}" for a in s.seed_aucs), " ".join(str(n) for n in s.seed_rounds),
                           ", ".join(s.stops), len(s.warnings), *own(s)] for s in summaries))
    return _csv_text(["method", "auc_mean", "auc_std", "n_seeds", "n_rounds", "seed_aucs", "warnings",
                      "not_comparable", *own_header],
                     ([s.method, _fmt(s.auc.mean, 4), _fmt(s.auc.std, 4), len(s.seeds), len(s.rows),
                       " ".join(f"{a:.4f}" for a in s.seed_aucs), len(s.warnings), int(s.more_pixels), *own(s)]
                      for s in summaries))


def rounds_csv(summaries: Sequence[MethodSummary]) -> str:
    task = summaries[0].task if summaries else C.TASK_JOINT
    return {C.TASK_CLASSIFICATION: _rounds_csv_classification, C.TASK_SEGMENTATION: _rounds_csv_segmentation}.get(
        task, _rounds_csv_joint)(summaries)


def _rounds_csv_joint(summaries: Sequence[MethodSummary]) -> str:
    header = ["method", "round", "n_labelled", X_COLUMN[_axis(summaries)], "test_dice_mean", "test_dice_std",
              "valid_dice_mean", "valid_dice_std", "test_acc_mean", "test_acc_std", "pseudo_dice_mean",
              "pseudo_dice_std", "n_seeds"]
    rows = ([s.method, row.round, _fmt(row.n_labelled.mean, 1), _fmt(row.x.mean), _fmt(row.test_dice.mean, 4),
             _fmt(row.test_dice.std, 4), _fmt(row.valid_dice.mean, 4), _fmt(row.valid_dice.std, 4),
             _fmt(row.test_acc.mean, 4), _fmt(row.test_acc.std, 4), _fmt(row.pseudo_dice.mean, 4),
             _fmt(row.pseudo_dice.std, 4), row.test_dice.n]
            for s in summaries for row in s.rows)
    return _csv_text(header, rows)


def _rounds_csv_segmentation(summaries: Sequence[MethodSummary]) -> str:
    header = ["method", "round", "n_labelled", X_COLUMN[_axis(summaries)], "test_miou_mean", "test_miou_std",
              "valid_miou_mean", "valid_miou_std", "n_seeds"]
    rows = ([s.method, row.round, _fmt(row.n_labelled.mean, 1), _fmt(row.x.mean), _fmt(row.test_score.mean, 4),
             _fmt(row.test_score.std, 4), _fmt(row.valid_score.mean, 4), _fmt(row.valid_score.std, 4),
             row.test_score.n]
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
