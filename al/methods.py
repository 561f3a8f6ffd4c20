"""What each method trains on and how its oracle picks: a registry, not if-chains in main.py."""

from __future__ import annotations

from dataclasses import dataclass

import constants as C


@dataclass(frozen=True)
class Method:
    name: str
    stage: int                 # 1: classifier on image labels (theta0); 2: segmentation head from theta0
    single_round: bool         # WSL and Full_sup: no acquisition, one round
    acquisition: str | None    # "random", "entropy", "mc_dropout", or None
    pseudo_labels: bool        # Label_prop: trains a second cycle on L plus pseudo-labelled samples


METHODS: dict[str, Method] = {
    C.WSL: Method(C.WSL, stage=1, single_round=True, acquisition=None, pseudo_labels=False),
    C.FULL_SUP: Method(C.FULL_SUP, stage=2, single_round=True, acquisition=None, pseudo_labels=False),
    C.RANDOM: Method(C.RANDOM, stage=2, single_round=False, acquisition="random", pseudo_labels=False),
    C.ENTROPY: Method(C.ENTROPY, stage=2, single_round=False, acquisition="entropy", pseudo_labels=False),
    C.MC_DROPOUT: Method(C.MC_DROPOUT, stage=2, single_round=False, acquisition="mc_dropout", pseudo_labels=False),
    C.LABEL_PROP: Method(C.LABEL_PROP, stage=2, single_round=False, acquisition="random", pseudo_labels=True),
}
