"""Active-learning curves and AUC table of every run of one dataset.

    python plot_active_learning_curves.py --dataset glas
    python plot_active_learning_curves.py --dataset synthetic --exp_root /tmp/exps --out paper/
    python plot_active_learning_curves.py --dataset glas --x seconds
    python plot_active_learning_curves.py --dataset digits
    python plot_active_learning_curves.py --dataset glas --group_by tag
    python plot_active_learning_curves.py --dataset glas --qualitative 3

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
The AUC is the mean height of the test-Dice (classification: test-accuracy; segmentation: test-mIoU) curve, in %: over rounds
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

--qualitative N (joint runs; classification and segmentation runs are skipped with one line) also
writes `<ds>-qualitative.{png,pdf}`: N test images, the same for every method, one block each, a row
per stage-2 method (WSL and Full_sup are left out: their Dice are the flat lines) and columns image /
true mask / the method's mask at each round 0..k-1 that every method reached (red over the image, the
true outline in yellow, titled with that image's test Dice), read from `round_<r>/test_masks/`. The
images are ranked by the per-image test Dice of the reference method (--qualitative_reference; default
Label_prop when drawn, else the first stage-2 method) at round k-1, averaged over its seeds, best
first, ties by id, and taken at evenly spaced positions: N=1 the median, 2 best and worst, 3 best,
median and worst, more the quantiles between (N above the number of test images is clipped to it).
The masks are of one seed, the smallest that every method drawn has. `<ds>-qualitative.csv` lists
each image, its rule and rank, and every Dice drawn; `<ds>-pseudo-masks.{png,pdf}` (Label_prop) shows
its pseudo-masks (train pool images) per round, N images chosen by the same rule on their Dice at the
last round with pseudo-masks. See report/qualitative.py. Rounds written before test masks were kept
are refused with one line: run them again or use predict.py.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import constants as C
from al.state import RunStateError
from data.records import DataError
from parseit import exit_on_error, resolve_path
from report.aggregate import GROUP_BY, GROUP_METHOD, X_AUTO, X_AXES, MethodSummary, Run, group_runs
from report.checks import DEFAULT_DROP_POINTS, checked_summaries
from report.figures import pseudo_figure, save_figure, save_text, score_figure
from report.loading import NoRunsError, load_runs
from report.qualitative import QualitativeError, write_qualitative
from report.tables import auc_csv, auc_markdown, rounds_csv


class _Parser(argparse.ArgumentParser):
    """argparse whose errors become one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}: see 'python plot_active_learning_curves.py --help'", file=sys.stderr)
        sys.exit(2)



def write_outputs(summaries: Sequence[MethodSummary], dataset: str, out: Path) -> list[Path]:
    """Figures and tables of one dataset; returns the paths written."""
    written = []
    fig, stem = score_figure(summaries, dataset)
    for suffix in ("png", "pdf"):
        save_figure(fig, out / f"{dataset}-{stem}.{suffix}")
        written.append(out / f"{dataset}-{stem}.{suffix}")
    if any(s.has_pseudo for s in summaries):
        save_figure(pseudo_figure(summaries, dataset), out / f"{dataset}-pseudo-dice.png")
        written.append(out / f"{dataset}-pseudo-dice.png")
    for name, text in ((f"{dataset}-auc.md", auc_markdown(summaries, dataset)),
                       (f"{dataset}-auc.csv", auc_csv(summaries)),
                       (f"{dataset}-rounds.csv", rounds_csv(summaries))):
        save_text(out / name, text)
        written.append(out / name)
    return written


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = _Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="dataset name of the runs (config.yaml 'dataset')")
    parser.add_argument("--exp_root", type=Path, default=Path("exps"),
                        help="folder searched for run folders (relative: from the repository root, or the working directory when installed; default exps)")
    parser.add_argument("--debug_subfolder", default=None,
                        help="only runs with this debug_subfolder ('' for none; default: any)")
    parser.add_argument("--split", type=int, default=0, help="split of the runs (default 0)")
    parser.add_argument("--fold", type=int, default=0, help="fold of the runs (default 0)")
    parser.add_argument("--runs", type=Path, nargs="+", default=None, metavar="DIR",
                        help="run folders, or folders holding them, read instead of searching --exp_root")
    parser.add_argument("--out", type=Path, default=Path("paper"),
                        help="output folder (relative: from the repository root, or the working directory when installed; default paper)")
    parser.add_argument("--x", choices=X_AXES, default=X_AUTO,
                        help="x-axis of every curve: %% of images labelled, %% of pixels annotated, or the "
                             "annotators' seconds (Label Studio lead_time); auto: pixels when some run "
                             "annotates regions, else images; classification runs: the number of labelled "
                             "images (default auto)")
    parser.add_argument("--group_by", choices=GROUP_BY, default=GROUP_METHOD,
                        help="one curve per method (al_type), or per run id less its -seed_<s> (exp_id, e.g. "
                             "gen_configs.py --exp_tag), so that ablations of one method are drawn side by side "
                             "(default method)")
    parser.add_argument("--drop_points", type=_points, default=DEFAULT_DROP_POINTS,
                        help="warn when a method's mean test metric falls by more than this many points from one "
                             f"round to the next while its labelled set grows (default {DEFAULT_DROP_POINTS:g})")
    parser.add_argument("--qualitative", type=_count, default=0, metavar="N",
                        help="joint task: also draw N test images (best, median, worst, then quantiles of the "
                             "reference method's test Dice) with every stage-2 method's mask per round, and "
                             "Label_prop's pseudo-masks (default 0: not drawn)")
    parser.add_argument("--qualitative_reference", default=None, metavar="METHOD",
                        help="the method whose per-image test Dice choose the --qualitative images "
                             "(default Label_prop when drawn, else the first stage-2 method drawn)")
    return parser.parse_args(argv)


def _points(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number of points >= 0")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number of images >= 0")
    return value


def qualitative(args: argparse.Namespace, runs: Sequence[Run], summaries: Sequence[MethodSummary],
                out: Path) -> list[Path]:
    """--qualitative: the figures of report/qualitative.py; runs of other tasks have no binary masks and are
    skipped with one line (exit code 0, the curves are still written)."""
    if not args.qualitative:
        return []
    task = summaries[0].task if summaries else C.TASK_JOINT
    if task != C.TASK_JOINT:
        print(f"--qualitative skipped: {task} runs have no binary masks to draw")
        return []
    return write_qualitative(summaries, group_runs(runs, args.group_by), args.qualitative,
                             args.qualitative_reference, args.dataset, out)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with exit_on_error(NoRunsError, RunStateError, QualitativeError, DataError, OSError):
        roots = [resolve_path(p) for p in args.runs] if args.runs else [resolve_path(args.exp_root)]
        runs = load_runs(roots, args.dataset, args.split, args.fold, args.debug_subfolder)
        summaries = checked_summaries(runs, args.x, args.group_by, args.drop_points)
        out = resolve_path(args.out)
        written = write_outputs(summaries, args.dataset, out) + qualitative(args, runs, summaries, out)
    print(f"figures and tables of {args.dataset} written to {out}:")
    for path in written:
        print(f"  {path.name}")
    print()
    print(auc_markdown(summaries, args.dataset), end="")


if __name__ == "__main__":
    main()
