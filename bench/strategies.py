"""Item "strategies": what each registered acquisition strategy costs to score and select, per pool.

Every strategy of al.strategies.STRATEGIES runs as a round runs it (main.acquire):
engine.acquire.gather_evidence fills an al.strategies.Evidence with what the strategy declares it
needs, then strategy.select makes the class-balanced pick. The value is the wall time of both, for
the whole pool; the reference is Entropy on the same pool (one deterministic pass).

The pool is an engine.resident.EvalSet of synthetic samples of the Size's image size, prepared
with the paper's evaluation geometry (bench.scoring), but here every image is its own random
image: strategies that compare encoder features (Coreset, HU, HU_kNN) would see one repeated point
if the images were shared. Of a pool of n images, STRATEGY_LABELLED_PERCENT % are labelled
(class-balanced, at least STRATEGY_LABELLED_MIN per class) and the rest are the candidates; the
oracle picks per_class_quota(round_count(STRATEGY_ROUND_PERCENT, n)) per class (al.selection).

Settings: al.strategies.StrategySettings defaults, with mc_passes = the Size's T. Ensemble scores
with its ensemble_size members (random initialisations with different seeds); their training is
the round's cost, not measured here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from al import selection
from al.regions import region_means, region_sizes, superpixels, top_regions
from al.strategies import STRATEGIES, StrategyError, StrategySettings
from al.strategies.base import (
    FEATURES,
    LOSS_MODULE,
    MC_PASSES,
    MEMBERS,
    PROBABILITIES,
    VALID_FEATURES,
    Evidence,
    Selection,
    Strategy,
)
from bench.measure import measure
from bench.report import Row
from bench.scoring import eval_geometry, scoring_model
from bench.sizes import STRATEGY_LABELLED_MIN, STRATEGY_LABELLED_PERCENT, STRATEGY_ROUND_PERCENT, Size
from constants import SUPERPIXEL_METHODS
from data.decoded import DecodedSample
from engine.acquire import feature_dim, gather_evidence, image_scores, pixel_score_maps
from engine.evaluate import Inference
from engine.resident import EvalSet
from engine.runtime import cpu_generator, set_deterministic, sync

REFERENCE = "Entropy"
_MB = 1024.0 * 1024.0
# What select does beyond the class-balanced top-k of the scores, for the strategies that do more.
SELECT_NOTES = {"Random": "class-balanced random draw", "Coreset": "k-center greedy per class",
                "DAL": "an MLP discriminator trained per sub-batch",
                "HU": "class Gaussians (sklearn)", "HU_kNN": "kNN on the labelled set (sklearn)"}


@dataclass(frozen=True)
class PoolRound:
    """One pool as a round sees it: positions of the labelled set and of the candidates, and the quota."""

    n: int
    labelled: list[int]
    candidates: list[int]
    per_class: int


def distinct_samples(size: Size, n: int, seed: int) -> list[DecodedSample]:
    """n unlabelled samples (no masks), each its own random image of size.original_hw, classes in turn."""
    h, w = size.original_hw
    generator = cpu_generator(seed)
    return [DecodedSample(id=f"pool_{i:06d}", label=i % size.num_classes,
                          image=torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=generator),
                          mask=None) for i in range(n)]


def distinct_pool(size: Size, n: int, device: torch.device, seed: int) -> EvalSet:
    """The samples of distinct_samples as an evaluation set on the device."""
    return EvalSet(distinct_samples(size, n, seed), eval_geometry(size), device, size.eval_batch)


def pool_round(pool: EvalSet, n: int, seed: int) -> PoolRound:
    """The first n positions: a class-balanced labelled set, the rest as candidates, and the per-class quota."""
    ids, labels = pool.ids[:n], pool.labels[:n]
    classes = int(np.unique(labels).size)
    per_labelled = max(selection.initial_per_class(STRATEGY_LABELLED_PERCENT, n, classes), STRATEGY_LABELLED_MIN)
    chosen = set(selection.select_random_balanced(ids, labels, per_labelled, np.random.default_rng(seed)))
    labelled = [p for p in range(n) if ids[p] in chosen]
    candidates = [p for p in range(n) if ids[p] not in chosen]
    per_class = selection.per_class_quota(selection.round_count(STRATEGY_ROUND_PERCENT, n), labels[candidates])
    return PoolRound(n, labelled, candidates, per_class)


def warm_round(rnd: PoolRound, batch: int) -> PoolRound:
    """The same labelled set with a full batch of candidates and the pool's last, partial batch."""
    rest = len(rnd.candidates) % batch
    candidates = rnd.candidates[:batch] + (rnd.candidates[-rest:] if rest and len(rnd.candidates) > batch else [])
    return PoolRound(rnd.n, rnd.labelled, candidates, rnd.per_class)


def new_evidence(pool: EvalSet, rnd: PoolRound) -> Evidence:
    return Evidence(candidates=[pool.ids[p] for p in rnd.candidates], candidate_labels=pool.labels[rnd.candidates],
                    labelled=[pool.ids[p] for p in rnd.labelled], labelled_labels=pool.labels[rnd.labelled])


@dataclass
class Outcome:
    evidence: Evidence
    picked: Selection
    gather_s: float
    select_s: float


def score_and_select(strategy: Strategy, members: list[nn.Module], pool: EvalSet, inference: Inference,
                     rnd: PoolRound, seed: int) -> Outcome:
    """gather_evidence then select, as main.acquire runs them; the two phases are timed apart."""
    evidence = new_evidence(pool, rnd)
    start = time.perf_counter()
    gather_evidence(strategy, members, pool, pool, inference, evidence, rnd.candidates, rnd.labelled, seed)
    sync(inference.device)
    middle = time.perf_counter()
    picked = strategy.select(evidence, rnd.per_class, np.random.default_rng(seed))
    sync(inference.device)
    return Outcome(evidence, picked, middle - start, time.perf_counter() - middle)


def evidence_mb(evidence: Evidence) -> float:
    """Size of what gather_evidence produced: image scores and feature tensors."""
    total = 0
    for value in (evidence.image_scores, evidence.candidate_features, evidence.labelled_features,
                  evidence.valid_features):
        if isinstance(value, Tensor):
            total += value.numel() * value.element_size()
        elif isinstance(value, np.ndarray):
            total += value.nbytes
    return total / _MB


def describe(strategy: Strategy) -> str:
    """What the strategy's evidence costs, in words."""
    needs = strategy.required()
    parts = []
    if PROBABILITIES in needs:
        parts.append("one pass")
    if MC_PASSES in needs:
        parts.append(f"T={strategy.settings.mc_passes} dropout passes (encode once, head T times)")
    if MEMBERS in needs:
        parts.append(f"{strategy.n_models()} members, one pass each; scoring only (the round also trains "
                     f"{strategy.n_models()} models)")
    if FEATURES in needs:
        parts.append("encoder features of candidates and labelled set")
    if VALID_FEATURES in needs:
        parts.append("and of the validation set")
    if LOSS_MODULE in needs:
        parts.append(f"one pass with the loss-prediction module on min({strategy.settings.ll4al_subset}, |U|) "
                     "candidates; scoring only (the round also trains the module with the head)")
    if strategy.name in SELECT_NOTES:
        parts.append(SELECT_NOTES[strategy.name])
    return "; ".join(parts) or "no evidence"


def strategy_rows(size: Size, device: torch.device, seed: int = 0) -> list[Row]:
    """One row per registered strategy and pool size, with the ratio to Entropy on the same pool.

    A measurement whose time, projected from the previous pool's rate, exceeds size.max_measure_s
    is not run; its row says so and gives the projection.
    """
    set_deterministic(False)
    inference = Inference(device=device)
    settings = StrategySettings(mc_passes=size.passes)
    strategies = {name: cls(settings) for name, cls in STRATEGIES.items()}
    n_members = max(s.n_models() for s in strategies.values())
    members = [scoring_model(size, device, seed + m) for m in range(n_members)]
    dim = feature_dim(members[0])
    pool = distinct_pool(size, max(size.strategy_pools), device, seed)
    view = next(pool.batches([0])).images.shape[-2:]
    shape = (f"{size.original_hw[0]}x{size.original_hw[1]} images, eval view {view[0]}x{view[1]}, "
             f"batch {size.eval_batch}, fp32")
    rounds = [pool_round(pool, n, seed) for n in size.strategy_pools]
    # Warm-up on every batch shape the pools will use: kernels and cudnn autotuning are chosen per
    # shape, once per process, and must not be timed. A strategy that refuses the round is not run.
    refused: dict[tuple[str, int], str] = {}
    for name, strategy in strategies.items():
        for rnd in rounds:
            try:
                strategy.check(pool.labels[rnd.labelled], dim)
            except StrategyError as err:
                refused[name, rnd.n] = str(err)
                continue
            score_and_select(strategy, members[:strategy.n_models()], pool, inference,
                             warm_round(rnd, size.eval_batch), seed)
    rates: dict[str, float] = {}
    rows = []
    for rnd in rounds:
        n_cand = len(rnd.candidates)
        facts = f"{n_cand} candidates, {len(rnd.labelled)} labelled, {rnd.per_class} per class picked"
        pool_rows: dict[str, Row] = {}
        for name, strategy in strategies.items():
            used = members[:strategy.n_models()]
            row = Row("strategies", f"{name} n={rnd.n}", "s", None, note=f"{shape}; {facts}; {describe(strategy)}",
                      extra={"n": rnd.n, "candidates": n_cand, "labelled": len(rnd.labelled),
                             "per_class": rnd.per_class, "models": len(used),
                             "needs": sorted(strategy.required())})
            pool_rows[name] = row
            projected = n_cand / rates[name] if name in rates else None
            if (name, rnd.n) in refused:
                row.note += f"; not run: {refused[name, rnd.n]}"
                continue
            if projected is not None and projected > size.max_measure_s:
                row.note += f"; not run: projected {projected:.0f} s > {size.max_measure_s:.0f} s"
                continue
            with measure(device) as measured:
                outcome = score_and_select(strategy, used, pool, inference, rnd, seed)
            row.value = measured.seconds
            rates[name] = n_cand / measured.seconds
            row.with_memory(measured)
            scores = np.array(list(outcome.picked.scores.values()), dtype=np.float64)
            row.extra.update({
                "images_per_s": rates[name], "gather_s": outcome.gather_s, "select_s": outcome.select_s,
                "evidence_mb": evidence_mb(outcome.evidence), "selected": list(outcome.picked.selected),
                "scored": int(scores.size), "scores_finite": bool(np.isfinite(scores).all()),
            })
            row.note = (f"{rates[name]:.3g} images/s (score {outcome.gather_s:.2f} + select "
                        f"{outcome.select_s:.2f} s), evidence {row.extra['evidence_mb'] * 1024:.3g} kB; {row.note}")
        reference = pool_rows.get(REFERENCE)
        if reference is not None and reference.value is not None:
            for row in pool_rows.values():
                if row.value is not None:
                    row.reference, row.reference_value = REFERENCE, reference.value
                    row.ratio = reference.value / row.value
                    row.extra["cost_vs_reference"] = row.value / reference.value
                    row.note = f"{row.value / reference.value:.3g}x {REFERENCE}'s time; {row.note}"
        rows += pool_rows.values()
    return rows


# Region-level annotation: superpixels per image, and the region scores of one pixel-level strategy.
REGIONS_PER_IMAGE = 100
REGION_STRATEGY = "Entropy"


def region_rows(size: Size, device: torch.device, seed: int = 0) -> list[Row]:
    """Superpixels of the largest pool (both methods), then Entropy's region scores against its image scores.

    Random images are the worst case for SLIC's iterations but its connectivity step merges noise into
    very few regions, so the region scores use the watershed's maps (about REGIONS_PER_IMAGE each).
    """
    set_deterministic(False)
    n = max(size.strategy_pools)
    samples = distinct_samples(size, n, seed)
    pool = EvalSet(samples, eval_geometry(size), device, size.eval_batch)
    inference = Inference(device=device)
    model = scoring_model(size, device, seed)
    strategy = STRATEGIES[REGION_STRATEGY](StrategySettings())
    rows, maps = [], {}
    for method in SUPERPIXEL_METHODS:
        with measure(device) as measured:
            maps[method] = [torch.from_numpy(superpixels(s.image.permute(1, 2, 0).numpy(), REGIONS_PER_IMAGE,
                                                         method)).to(torch.int64) for s in samples]
        regions = float(np.mean([int(m.max()) + 1 for m in maps[method]]))
        rows.append(Row("strategies", f"superpixels {method} n={n}", "s", measured.seconds,
                        note=f"{measured.seconds / n * 1000:.3g} ms per {size.original_hw[0]}x{size.original_hw[1]} "
                             f"image, {regions:.0f} regions per image on average (asked {REGIONS_PER_IMAGE}); "
                             "once per fold, then cached").with_memory(measured))
    labels = [m.to(device) for m in maps["watershed"]]
    positions = list(range(n))

    def image_level() -> None:
        image_scores(model, pool, inference, positions, strategy.pixel_scores)

    def region_level() -> None:
        ids, index, values, sizes = [], [], [], []
        for p, pixel_map in pixel_score_maps(strategy, [model], pool, inference, positions, seed):
            k = int(labels[p].max()) + 1
            means, counts = region_means(pixel_map, labels[p], k).cpu().numpy(), region_sizes(labels[p], k).cpu()
            ids += [pool.ids[p]] * k
            index += list(range(k))
            values += means.tolist()
            sizes += counts.tolist()
        top_regions(ids, np.asarray(index), np.asarray(values), np.asarray(sizes), 3 * REGIONS_PER_IMAGE, "regions")

    timed = {}
    for name, work in (("images", image_level), ("regions", region_level)):
        work()  # warm-up: kernel choice per shape is not timed
        with measure(device) as measured:
            work()
        timed[name] = measured
    reference = timed["images"].seconds
    for name, measured in timed.items():
        row = Row("strategies", f"{REGION_STRATEGY} {name} n={n}", "s", measured.seconds,
                  note=("per-image mean of the pixel entropy" if name == "images" else
                        "per-pixel entropy, mean per watershed region, top 300 regions of the pool"),
                  reference=f"{REGION_STRATEGY} images", reference_value=reference,
                  ratio=reference / measured.seconds)
        rows.append(row.with_memory(measured))
    return rows
