"""Acquisition strategies as plug-ins: one module each, found by name in one registry.

A new strategy is a subclass of `Strategy` in its own module, added to `STRATEGIES` below; the
methods of al/methods.py name the strategy their oracle uses.
"""

from __future__ import annotations

from al.strategies.base import Strategy, StrategyError, StrategySettings
from al.strategies.coreset import Coreset
from al.strategies.dal import DiscriminativeAL
from al.strategies.ensemble import Ensemble
from al.strategies.hidden_uncertainty import HiddenUncertainty, HiddenUncertaintyKNN
from al.strategies.ll4al import LearningLoss
from al.strategies.mc import MCBALD, MCDropout, MCEntropy
from al.strategies.random import RandomStrategy
from al.strategies.uncertainty import Entropy, LeastConfidence, Margin

STRATEGIES: dict[str, type[Strategy]] = {cls.name: cls for cls in (
    RandomStrategy, Entropy, LeastConfidence, Margin, MCDropout, MCEntropy, MCBALD, Ensemble, Coreset,
    HiddenUncertainty, HiddenUncertaintyKNN, LearningLoss, DiscriminativeAL)}


def build_strategy(name: str, settings: StrategySettings) -> Strategy:
    """The strategy registered under `name`, with its hyper-parameters."""
    if name not in STRATEGIES:
        raise StrategyError(f"unknown strategy '{name}': use one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name](settings)
