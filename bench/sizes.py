"""The two problem sizes: "paper" (the paper's GlaS/PH2 settings, for a GPU) and "small" (a CPU check).

Paper: training crops of int(416 x 0.9) = 374 px from views the size of a GlaS image (522 x 775)
padded by 1 % and scaled by 0.9, batch 20, base_width 24, leak 64, 2 classes, MC dropout with
T = 50. Small keeps every code path and shrinks everything so that the whole suite runs in a
few minutes on two CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    name: str
    # Training (item 1)
    crop: int                           # training crop side (already scaled)
    view_hw: tuple[int, int]            # device-resident training views the crops come from
    batch: int
    base_width: int
    leak: int
    num_classes: int
    warmup: int                         # iterations before timing
    iterations: int                     # timed iterations
    # Scoring (item 2)
    original_hw: tuple[int, int]        # size of the pool images before the evaluation view
    pools: tuple[int, ...]              # pool sizes scored
    naive_max_pool: int                 # the naive reference runs up to this pool size
    passes: int                         # MC-dropout T
    eval_batch: int
    max_measure_s: float                # a scoring measurement projected to take longer is not run
    # Strategy scoring cost (item "strategies")
    strategy_pools: tuple[int, ...]     # pool sizes (labelled set and candidates together)
    # kNN (item 3)
    knn_sizes: tuple[int, ...]
    # Rounds (item 4)
    round_epochs: tuple[int, int]       # epochs per cycle of every round, and of the second Random run
    full_fold: bool                     # the repository's synthetic fold (True) or a subset of it


PAPER = Size(name="paper", crop=374, view_hw=(479, 710), batch=20, base_width=24, leak=64, num_classes=2,
             warmup=10, iterations=40, original_hw=(522, 775), pools=(100, 1_000, 10_000), naive_max_pool=1_000,
             passes=50, eval_batch=20, max_measure_s=150.0, strategy_pools=(100, 1_000),
             knn_sizes=(1_000, 10_000, 100_000), round_epochs=(10, 30), full_fold=True)

SMALL = Size(name="small", crop=96, view_hw=(104, 104), batch=8, base_width=4, leak=8, num_classes=2,
             warmup=2, iterations=8, original_hw=(80, 104), pools=(20, 100), naive_max_pool=20,
             passes=10, eval_batch=8, max_measure_s=600.0, strategy_pools=(64, 256),
             knn_sizes=(1_000, 2_000), round_epochs=(2, 8), full_fold=False)

SIZES = {s.name: s for s in (PAPER, SMALL)}
# Common to both sizes.
KNN_CLASSES = 10
KNN_LABELLED_FRACTION = 0.1
KNN_K = 40
KNN_BINS = 256
KNN_CHANNELS = 3
BACKBONE_DROPOUT = 0.2              # the MC_Dropout setting of the configuration files
STRATEGY_LABELLED_PERCENT = 10.0    # share of a strategy pool labelled before the round (class-balanced)
STRATEGY_LABELLED_MIN = 3           # ... but at least this many per class (HU needs 2, HU_kNN k = 5 in all)
STRATEGY_ROUND_PERCENT = 10.0       # share of the pool the oracle labels in the round (p_samples)
