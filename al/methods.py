"""What each method trains on and which strategy its oracle uses: a registry, not if-chains in main.py."""

from __future__ import annotations

from dataclasses import dataclass

import constants as C


@dataclass(frozen=True)
class Method:
    name: str
    stage: int                 # 1: classifier on image labels (theta0); 2: segmentation head from theta0
    single_round: bool         # WSL and Full_sup: no acquisition, one round
    strategy: str | None       # name in al.strategies.STRATEGIES; None for the single-round methods
    pseudo_labels: bool        # Label_prop: trains a second cycle on L plus pseudo-labelled samples


def _active(name: str, strategy: str | None = None) -> Method:
    """A stage-2 method whose oracle picks with `strategy` (by default the strategy of the same name)."""
    return Method(name, stage=2, single_round=False, strategy=strategy or name, pseudo_labels=False)


METHODS: dict[str, Method] = {
    C.WSL: Method(C.WSL, stage=1, single_round=True, strategy=None, pseudo_labels=False),
    C.FULL_SUP: Method(C.FULL_SUP, stage=2, single_round=True, strategy=None, pseudo_labels=False),
    C.LABEL_PROP: Method(C.LABEL_PROP, stage=2, single_round=False, strategy=C.RANDOM, pseudo_labels=True),
    **{name: _active(name) for name in (C.RANDOM, C.ENTROPY, C.MC_DROPOUT, C.LEAST_CONFIDENCE, C.MARGIN,
                                        C.MC_ENTROPY, C.MC_BALD, C.ENSEMBLE, C.CORESET, C.HU, C.HU_KNN, C.LL4AL,
                                        C.DAL)},
}
