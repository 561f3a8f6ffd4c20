"""MC dropout: scores over T stochastic passes with only the dropout layers sampling (strategies.md 4).

The passes are averaged as probabilities, not logits (the baal decorator order of one reference
averages logits). MC_Dropout keeps the paper's per-pixel variance (or BALD with mc_score);
MC_entropy and MC_BALD are their own methods.
"""

from __future__ import annotations

import constants as C
from al.strategies.base import MC_PASSES, Strategy


class MCDropout(Strategy):
    name = "MC_Dropout"
    needs = frozenset({MC_PASSES})

    def pass_kind(self) -> str:
        return self.settings.mc_score


class MCEntropy(Strategy):
    """Predictive entropy H(mean_t p)."""

    name = "MC_entropy"
    needs = frozenset({MC_PASSES})

    def pass_kind(self) -> str:
        return C.SCORE_ENTROPY


class MCBALD(Strategy):
    """Mutual information H(mean_t p) - mean_t H(p_t) (Houlsby 2011, Gal 2017)."""

    name = "MC_BALD"
    needs = frozenset({MC_PASSES})

    def pass_kind(self) -> str:
        return C.SCORE_BALD
