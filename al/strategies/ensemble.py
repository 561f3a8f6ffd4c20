"""Deep ensembles: M segmentation heads trained from theta0 with different seeds (strategies.md 5).

The members' probabilities take the place of the T passes of MC dropout, so the same scores apply
(predictive entropy, BALD or variance across members). Cost: M trainings per round.
"""

from __future__ import annotations

from al.strategies.base import MEMBERS, Strategy


class Ensemble(Strategy):
    name = "Ensemble"
    needs = frozenset({MEMBERS})

    def n_models(self) -> int:
        return self.settings.ensemble_size

    def pass_kind(self) -> str:
        return self.settings.ensemble_score
