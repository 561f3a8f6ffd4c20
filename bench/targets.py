"""Item 5: the project's speed targets on an H100-class GPU, checked against this run's rows.

  - a Random round 0 at the paper's 1000 epochs in under a minute (the original: about 17 min);
  - the training pipeline at >= 80 % of the model-only limit (worst precision variant);
  - MC-dropout scoring >= 5x the naive way at T = 50 (largest pool the naive way ran on);
  - kNN pairing of 100k histograms in < 60 s within 10 GB of device memory.

The targets are GPU targets at paper size: elsewhere the rows show the measured figures with the
verdict "n/a (CPU)" or "n/a (small size)".
"""

from __future__ import annotations

import torch

from bench.report import Row
from bench.sizes import Size

ROUND_LIMIT_S = 60.0
PIPELINE_SHARE = 0.80
MC_SPEEDUP = 5.0
MC_PASSES = 50
KNN_N = 100_000
KNN_LIMIT_S = 60.0
KNN_LIMIT_MB = 10 * 1024.0


def _verdict(applies: str, value: float | None, ok: bool) -> str:
    if applies:
        return applies
    if value is None:
        return "not run"
    return "met" if ok else "not met"


def _projected_round(rows: list[Row]) -> Row | None:
    """The projected Random round, on PH2 (the original's data) when it ran, else on the synthetic set."""
    found = [r for r in rows if r.item == "round" and r.case.endswith("(projected)")]
    return next((r for r in found if r.case.startswith("ph2")), found[0] if found else None)


def target_rows(rows: list[Row], device: torch.device, size: Size) -> list[Row]:
    applies = "n/a (CPU)" if device.type != "cuda" else ("n/a (small size)" if size.name != "paper" else "")
    out = []

    source = _projected_round(rows)
    value = None if source is None else source.value
    out.append(Row("target", "Random round 0 at 1000 epochs", "s", value,
                   reference="" if source is None else source.reference,
                   reference_value=None if source is None else source.reference_value,
                   ratio=None if source is None else source.ratio, target=f"< {ROUND_LIMIT_S:.0f} s",
                   verdict=_verdict(applies, value, value is not None and value < ROUND_LIMIT_S),
                   note="" if source is None else f"from '{source.case}'"))

    pipelines = [r for r in rows if r.item == "train" and r.case.startswith("pipeline") and r.ratio is not None]
    worst = min(pipelines, key=lambda r: r.ratio, default=None)
    value = None if worst is None else worst.ratio
    out.append(Row("target", "pipeline / model-only (worst variant)", "share", value,
                   target=f">= {PIPELINE_SHARE:.2f}",
                   verdict=_verdict(applies, value, value is not None and value >= PIPELINE_SHARE),
                   note="" if worst is None else f"from '{worst.case}'"))

    scored = [r for r in rows if r.item == "score" and r.case.startswith("mc T=") and r.ratio is not None]
    largest = max(scored, key=lambda r: r.extra.get("n", 0), default=None)
    value = None if largest is None else largest.ratio
    passes = None if largest is None else largest.extra.get("passes")
    mc_applies = applies or ("" if passes in (None, MC_PASSES) else f"n/a (T={passes})")
    out.append(Row("target", f"MC dropout vs naive at T={MC_PASSES}", "x naive", value,
                   target=f">= {MC_SPEEDUP:.0f}x",
                   verdict=_verdict(mc_applies, value, value is not None and value >= MC_SPEEDUP),
                   note="" if largest is None else f"from '{largest.case}'"))

    knn = next((r for r in rows if r.item == "knn" and r.extra.get("n") == KNN_N), None)
    value = None if knn is None else knn.value
    peak = None if knn is None else knn.device_peak_mb
    ok = value is not None and value < KNN_LIMIT_S and peak is not None and peak < KNN_LIMIT_MB
    out.append(Row("target", f"kNN n={KNN_N // 1000}k", "s", value, target=f"< {KNN_LIMIT_S:.0f} s within "
                   f"{KNN_LIMIT_MB / 1024:.0f} GB", verdict=_verdict(applies, value, ok),
                   device_peak_mb=peak, note="" if knn is None else f"from '{knn.case}'"))
    return out
