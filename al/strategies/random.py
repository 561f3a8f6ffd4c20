"""Random: the class-balanced uniform draw every study compares against (strategies.md 2)."""

from __future__ import annotations

import numpy as np

from al import selection
from al.strategies.base import Evidence, Selection, Strategy


class RandomStrategy(Strategy):
    """Draws min(per_class, available) candidates per class from the round's own generator."""

    name = "Random"

    def select(self, evidence: Evidence, per_class: int, rng: np.random.Generator) -> Selection:
        return Selection(selection.select_random_balanced(evidence.candidates, evidence.candidate_labels,
                                                          per_class, rng))
