"""Item 2: acquisition scoring throughput (images/s) on a device-resident pool.

Entropy: engine.acquire.entropy_scores (one pass). MC dropout: engine.acquire.mc_dropout_scores
(backbone and full-resolution branch once per batch, the stochastic head T times, several
passes batched) against bench.naive (the whole network T times per batch). The pool is an
engine.resident.EvalSet of synthetic samples that share one random image of the size the
Size names (GlaS-like 522 x 775 at paper size), prepared with the paper's evaluation geometry
(1 % reflect padding, x0.9), so every prediction is brought back to the original size as in a
real round. Image content does not change the cost. The pool is built once, at the largest
size, and each pool size scores its first n positions.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.measure import measure
from bench.naive import naive_mc_dropout_scores
from bench.report import Row
from bench.sizes import BACKBONE_DROPOUT, Size
from data.decoded import DecodedSample
from data.views import Geometry
from engine.acquire import entropy_scores, mc_dropout_scores
from engine.evaluate import Inference
from engine.resident import EvalSet
from engine.runtime import cpu_generator, set_deterministic
from models.hybrid import HybridModel

MC_KIND = "variance"
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
    model = HybridModel(size.num_classes, base_width=size.base_width, leak=size.leak,
                        backbone_dropout=BACKBONE_DROPOUT).to(device)
    return model.eval()


def score_rows(size: Size, device: torch.device, seed: int = 0) -> list[Row]:
    """Entropy, fast MC dropout and (up to size.naive_max_pool) naive MC dropout, per pool size."""
    set_deterministic(False)
    inference = Inference(device=device)
    model = scoring_model(size, device, seed)
    pool = synthetic_pool(size, max(size.pools), device, seed)
    view = next(pool.batches([0])).images.shape[-2:]
    shape = (f"{size.original_hw[0]}x{size.original_hw[1]} images, eval view {view[0]}x{view[1]}, "
             f"batch {size.eval_batch}, fp32")
    t = size.passes
    warm = list(range(min(size.eval_batch, len(pool))))
    entropy_scores(model, pool, inference, warm)
    mc_dropout_scores(model, pool, inference, warm, t, MC_KIND, seed)
    naive_mc_dropout_scores(model, pool, inference, warm[:1], 1, MC_KIND, seed)
    rows = []
    for n in size.pools:
        positions = list(range(n))
        with measure(device) as measured:
            entropy_scores(model, pool, inference, positions)
        rows.append(Row("score", f"entropy n={n}", "images/s", n / measured.seconds, note=shape,
                        extra={"n": n}).with_memory(measured))
        with measure(device) as measured:
            fast = mc_dropout_scores(model, pool, inference, positions, t, MC_KIND, seed)
        fast_row = Row("score", f"mc T={t} n={n}", "images/s", n / measured.seconds,
                       note=f"{shape}; encode once, head T times", extra={"n": n, "passes": t}).with_memory(measured)
        if n <= size.naive_max_pool:
            with measure(device) as measured:
                naive = naive_mc_dropout_scores(model, pool, inference, positions, t, MC_KIND, seed)
            naive_rate = n / measured.seconds
            rows.append(Row("score", f"mc naive T={t} n={n}", "images/s", naive_rate,
                            note=f"{shape}; whole network T times", extra={"n": n, "passes": t}).with_memory(measured))
            fast_row.reference, fast_row.reference_value, fast_row.ratio = "naive", naive_rate, fast_row.value / naive_rate
            fast_row.extra["scores_finite"] = bool(np.isfinite(fast).all() and np.isfinite(naive).all())
        else:
            fast_row.note += f"; naive not run above n={size.naive_max_pool} (time)"
        rows.append(fast_row)
    return rows
