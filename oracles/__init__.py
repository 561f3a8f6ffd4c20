"""Oracles as plug-ins: who answers a round's pick, found by name in one registry.

A new oracle (a person through an annotation tool's API, say) is a subclass of `Oracle` in its own
module, added to `ORACLES` below.
"""

from __future__ import annotations

import constants as C
from oracles.base import Oracle, OracleClient, Revealed, WaitingForAnswers
from oracles.files import FilesOracle
from oracles.simulated import SimulatedOracle
from parseit import Config

ORACLES: dict[str, type[Oracle]] = {C.ORACLE_SIMULATED: SimulatedOracle, C.ORACLE_FILES: FilesOracle}

__all__ = ["ORACLES", "Oracle", "OracleClient", "Revealed", "WaitingForAnswers", "build_oracle"]


def build_oracle(cfg: Config) -> Oracle:
    """The oracle the configuration names (parseit has checked the name against constants.ORACLES)."""
    return ORACLES[cfg.oracle](cfg)
