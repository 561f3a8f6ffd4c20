"""Checks that say when a study's curves look wrong, before anyone reads a result off them.

- a method's mean test metric falls by more than `drop_points` from one round to the next while its
  labelled set grows (more labels should not cost quality: a bug until shown otherwise);
- a run stopped on a diverged round (its failed.json), so the method's mean is over fewer seeds;
- the seeds of one method reached different rounds (joint task), or a classification seed is shorter
  than the others without having stopped;
- a region-level run annotated more pixels than the image-level runs at the same round, so its
  curve is not comparable at equal budget (a mark, not counted as a warning).

Pure functions over summaries and runs; the figures, tables and the printed report show the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

from report.aggregate import GROUP_METHOD, X_AUTO, MethodSummary, Run, group_runs, summarise

DEFAULT_DROP_POINTS = 2.0
DROP, DIVERGED, UNEVEN = "drop", "diverged", "uneven seeds"
# Shares of pixels within this many points count as the same budget.
PIXEL_TOLERANCE = 0.5


@dataclass(frozen=True)
class CurveWarning:
    method: str
    kind: str               # DROP, DIVERGED or UNEVEN
    text: str
    round: int | None = None  # DROP: the round whose mean fell


def drops(summary: MethodSummary, points: float) -> list[CurveWarning]:
    """Rounds whose mean test metric is more than `points` below the round before, with more labels."""
    stat, name = "test_score", summary.metric_name
    out = []
    for before, after in pairwise(summary.rows):
        a, b = getattr(before, stat), getattr(after, stat)
        grows = after.n_labelled.mean > before.n_labelled.mean or after.x.mean > before.x.mean
        if a.n and b.n and grows and a.mean - b.mean > points:
            out.append(CurveWarning(summary.method, DROP, (
                f"{summary.method}: mean {name} falls {a.mean - b.mean:.1f} points from round {before.round} "
                f"({a.mean:.2f}) to round {after.round} ({b.mean:.2f}) while the labelled set grows "
                f"({before.n_labelled.mean:g} -> {after.n_labelled.mean:g} images)"), after.round))
    return out


def diverged(method: str, runs: Mapping[int, Run]) -> list[CurveWarning]:
    """Runs that stopped on a diverged round."""
    return [CurveWarning(method, DIVERGED, f"{method} seed {seed} stopped at round {run.failure[0]}: {run.failure[1]}",
                         run.failure[0])
            for seed, run in sorted(runs.items()) if run.failure is not None]


def uneven(summary: MethodSummary, runs: Mapping[int, Run]) -> list[CurveWarning]:
    """Seeds of one method that reached different rounds (a diverged run is reported as such). A classification seed that stopped (patience, pool
    exhausted, last round) is where it should be; one that did not stop and is shorter than another is not."""
    reached = {seed: len(run.states) for seed, run in sorted(runs.items()) if run.failure is None}
    if not reached or len(set(reached.values())) == 1:
        return []
    longest = max(reached.values())
    if summary.classification:
        short = [s for s, n in reached.items() if n < longest and not (runs[s].states and runs[s].states[-1].exhausted)]
        if not short:
            return []
    spread = ", ".join(f"seed {s}: {n}" for s, n in reached.items())
    counted = "" if summary.classification else f"; only the {len(summary.rows)} rounds every seed finished count"
    return [CurveWarning(summary.method, UNEVEN, f"{summary.method}: seeds finished {min(reached.values())} to "
                                                 f"{longest} rounds ({spread}){counted}")]


def more_pixels(summaries: Sequence[MethodSummary]) -> set[str]:
    """Region-level methods that annotated a larger share of pixels than some image-level method at a round
    both reached: their curves sit right of the others' and are not comparable at equal budget."""
    image_level = [s for s in summaries if not s.single_round and not s.method.endswith("(regions)")]
    out = set()
    for s in summaries:
        if not s.method.endswith("(regions)"):
            continue
        for other in image_level:
            if any(a.percent_pixels.mean > b.percent_pixels.mean + PIXEL_TOLERANCE
                   for a, b in zip(s.rows, other.rows) if a.percent_pixels.n and b.percent_pixels.n):
                out.add(s.method)
    return out


def annotate(summaries: Sequence[MethodSummary], groups: Mapping[str, Mapping[int, Run]],
             points: float = DEFAULT_DROP_POINTS) -> list[MethodSummary]:
    """The summaries with their warnings, the rounds to mark on the figure and the region mark set."""
    found = check(summaries, groups, points)
    wide = more_pixels(summaries)
    return [replace(s, warnings=tuple(w.text for w in found[s.method]),
                    drop_rounds=tuple(w.round for w in found[s.method] if w.kind == DROP),
                    more_pixels=s.method in wide) for s in summaries]


def check(summaries: Sequence[MethodSummary], groups: Mapping[str, Mapping[int, Run]],
          points: float = DEFAULT_DROP_POINTS) -> dict[str, list[CurveWarning]]:
    """Every warning of every method drawn, by method (a method with none maps to [])."""
    out = {}
    for s in summaries:
        runs = groups.get(s.method, {})
        found = [] if s.single_round else drops(s, points)
        out[s.method] = found + diverged(s.method, runs) + uneven(s, runs)
    return out


def checked_summaries(runs: Iterable[Run], x: str = X_AUTO, group_by: str = GROUP_METHOD,
                      points: float = DEFAULT_DROP_POINTS) -> list[MethodSummary]:
    """report.aggregate.summarise, with every summary's warnings (what the figures and tables show)."""
    runs = list(runs)
    return annotate(summarise(runs, x, group_by), group_runs(runs, group_by), points)
