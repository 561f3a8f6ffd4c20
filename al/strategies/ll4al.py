"""Learning Loss for AL (Yoo & Kweon 2019; strategies.md 6).

A loss-prediction module is trained with the segmentation head in the round (models.loss_prediction,
losses.ranking); the oracle then annotates the candidates whose predicted loss is highest, among a
random subset of the pool (only the ranking of the predictions matters).
"""

from __future__ import annotations

import numpy as np

from al.strategies.base import LOSS_MODULE, Evidence, Strategy, StrategyError


class LearningLoss(Strategy):
    name = "LL4AL"
    needs = frozenset({LOSS_MODULE})

    def candidate_subset(self, candidates: list[str], rng: np.random.Generator) -> list[str]:
        """min(ll4al_subset, |U|) candidates drawn uniformly, kept in their pool order."""
        if len(candidates) <= self.settings.ll4al_subset:
            return candidates
        keep = np.sort(rng.choice(len(candidates), size=self.settings.ll4al_subset, replace=False))
        return [candidates[i] for i in keep]

    def scores(self, evidence: Evidence, rng: np.random.Generator) -> np.ndarray:
        """The predicted losses; a module that diverged in training is named, not ranked."""
        values = super().scores(evidence, rng)
        if not np.isfinite(values).all():
            raise StrategyError("LL4AL's loss-prediction module diverged (non-finite predicted losses): "
                                "lower --ll4al_weight (e.g. 0.01) or --lr")
        return values
