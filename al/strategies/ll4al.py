"""Learning Loss for AL (Yoo & Kweon 2019; strategies.md 6).

A loss-prediction module is trained with the segmentation head in the round (models.loss_prediction,
losses.ranking); the oracle then annotates the candidates whose predicted loss is highest, among a
random subset of the pool (only the ranking of the predictions matters).
"""

from __future__ import annotations

import numpy as np

from al.strategies.base import LOSS_MODULE, Strategy


class LearningLoss(Strategy):
    name = "LL4AL"
    needs = frozenset({LOSS_MODULE})

    def candidate_subset(self, candidates: list[str], rng: np.random.Generator) -> list[str]:
        """min(ll4al_subset, |U|) candidates drawn uniformly, kept in their pool order."""
        if len(candidates) <= self.settings.ll4al_subset:
            return candidates
        keep = np.sort(rng.choice(len(candidates), size=self.settings.ll4al_subset, replace=False))
        return [candidates[i] for i in keep]
