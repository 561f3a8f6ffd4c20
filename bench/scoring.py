"""Item 2: acquisition scoring throughput (images/s) on a device-resident pool.

Entropy: engine.acquire.image_scores with the Entropy strategy's per-pixel score (one pass). MC
dropout: engine.acquire.mc_pass_scores with the per-pixel variance over the passes (backbone,
full-resolution branch and its half of the fusion conv once per batch, the stochastic head T
times, several passes batched) against bench.naive (the whole network T times per batch).
The pool is an engine.resident.EvalSet of synthetic samples that share one random image of the
size the Size names (GlaS-like 522 x 775 at paper size), prepared with the paper's evaluation
geometry (1 % reflect padding, x0.9), so every prediction is brought back to the original size as
in a real round. Image content does not change the cost. The pool is built once, at the largest
size, and each pool size scores its first n positions.
"""

from __future__ import annotations

import numpy as np
import torch

from al.scores import PassStats, pass_score
from al.strategies import Entropy, StrategySettings
from bench.measure import measure
from bench.naive import naive_mc_dropout_scores
from bench.report import Row
from bench.sizes import BACKBONE_DROPOUT, Size
from data.decoded import DecodedSample
from data.views import Geometry
from engine.acquire import image_scores, mc_pass_scores
from engine.evaluate import Inference
from engine.resident import EvalSet
from engine.runtime import cpu_generator, set_deterministic
from models.hybrid import HybridModel

MC_KIND = "variance"
LOSS_PREDICTION_WIDTH = 128
PADDING_RATIO = 0.01
RATIO_SCALE_PATCH = 0.9
# The preparation filter does not change the cost of scoring; NEAREST keeps building a large pool quick.
SCALE_ALGO = "NEAREST"


def eval_geometry(size: Size) -> Geometry:
    return Geometry(crop_size=size.crop, up_scale_small_dim_to=None, ratio_scale_patch=RATIO_SCALE_PATCH,
                    padding_ratio=PADDING_RATIO, pad_eval=True, padding_mode="reflect", scale_algo=SCALE_ALGO)


def synthetic_pool(size: Size, n: int, device: torch.device, seed: int) -> EvalSet:
    """n unlabelled samples (no masks) sharing one random image of size.original_hw."""
    h, w = size.original_hw
    image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=cpu_generator(seed))
    samples = [DecodedSample(id=f"pool_{i:06d}", label=i % size.num_classes, image=image, mask=None)
               for i in range(n)]
    return EvalSet(samples, eval_geometry(size), device, size.eval_batch)


def scoring_model(size: Size, device: torch.device, seed: int) -> HybridModel:
    torch.manual_seed(seed)
    # With LL4AL's loss-prediction module, which only LL4AL's scoring runs.
    model = HybridModel(size.num_classes, base_width=size.base_width, leak=size.leak,
                        backbone_dropout=BACKBONE_DROPOUT, loss_prediction_width=LOSS_PREDICTION_WIDTH).to(device)
    return model.eval()


def variance(stats: PassStats) -> torch.Tensor:
    """The MC_Dropout score of the paper: per-pixel variance over the passes, averaged over pixels."""
    return pass_score(stats, MC_KIND)


def _projected_seconds(rates: dict[str, float], kind: str, n: int) -> float | None:
    """Time n images would take at the rate measured on the previous pool (None before any)."""
    return n / rates[kind] if kind in rates else None


def score_rows(size: Size, device: torch.device, seed: int = 0) -> list[Row]:
    """Entropy, fast MC dropout and (up to size.naive_max_pool) naive MC dropout, per pool size.

    A measurement whose time, projected from the previous pool's rate, exceeds
    size.max_measure_s is not run; its row says so and gives the projection.
    """
    set_deterministic(False)
    inference = Inference(device=device)
    model = scoring_model(size, device, seed)
    pool = synthetic_pool(size, max(size.pools), device, seed)
    view = next(pool.batches([0])).images.shape[-2:]
    shape = (f"{size.original_hw[0]}x{size.original_hw[1]} images, eval view {view[0]}x{view[1]}, "
             f"batch {size.eval_batch}, fp32")
    t = size.passes
    # Warm-up on full batches and on the pools' last, partial batches: kernels and cudnn autotuning
    # are chosen per shape, once per process, and must not be timed.
    warm = sorted({*range(min(size.eval_batch, len(pool))), *(n - 1 for n in size.pools)})
    entropy = Entropy(StrategySettings()).pixel_scores
    image_scores(model, pool, inference, warm, entropy)
    mc_pass_scores(model, pool, inference, warm, t, variance, seed)
    naive_mc_dropout_scores(model, pool, inference, warm, 1, MC_KIND, seed)
    # kind: (scorer, passes per image, how it works)
    scorers = {
        "entropy": (lambda positions: image_scores(model, pool, inference, positions, entropy), 1, "one pass"),
        "mc": (lambda positions: mc_pass_scores(model, pool, inference, positions, t, variance, seed),
               t, "encode once, head T times"),
        "mc naive": (lambda positions: naive_mc_dropout_scores(model, pool, inference, positions, t, MC_KIND, seed),
                     t, "whole network T times"),
    }
    rates: dict[str, float] = {}
    rows = []
    for n in size.pools:
        positions = list(range(n))
        measured_rows: dict[str, tuple[Row, np.ndarray | None]] = {}
        for kind, (score, passes, how) in scorers.items():
            if kind == "mc naive" and n > size.naive_max_pool:
                continue
            label = kind if passes == 1 else f"{kind} T={passes}"
            row = Row("score", f"{label} n={n}", "images/s", None, note=f"{shape}; {how}",
                      extra={"n": n, "passes": passes})
            projected = _projected_seconds(rates, kind, n)
            if projected is not None and projected > size.max_measure_s:
                row.note += f"; not run: projected {projected:.0f} s > {size.max_measure_s:.0f} s"
                measured_rows[kind] = (row, None)
                continue
            with measure(device) as measured:
                values = score(positions)
            row.value = rates[kind] = n / measured.seconds
            measured_rows[kind] = (row.with_memory(measured), values)
        fast, fast_values = measured_rows["mc"]
        naive, naive_values = measured_rows.get("mc naive", (None, None))
        if naive is None:
            fast.note += f"; naive not run above n={size.naive_max_pool} (time)"
        elif fast.value is not None and naive.value is not None:
            fast.reference, fast.reference_value, fast.ratio = "naive", naive.value, fast.value / naive.value
            fast.extra["scores_finite"] = bool(np.isfinite(fast_values).all() and np.isfinite(naive_values).all())
        rows += [row for row, _ in measured_rows.values()]
    return rows
