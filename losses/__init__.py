"""Training losses."""

from losses.hybrid import TERM_NAMES, HybridLoss

__all__ = ["TERM_NAMES", "HybridLoss"]
