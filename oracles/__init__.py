"""Oracles as plug-ins: who answers a round's pick, found by name in one registry.

A new oracle is a subclass of `Oracle` in its own module, added to `ORACLES` below; one that differs from
another in how the answers arrive only (label_studio: through a server's API) subclasses that one.
"""

from __future__ import annotations

import constants as C
from oracles.base import Oracle, OracleClient, Revealed, WaitingForAnswers
from oracles.files import FilesOracle
from oracles.label_studio import LabelStudioOracle
from oracles.label_studio_api import LabelStudioError
from oracles.simulated import SimulatedOracle
from parseit import Config

ORACLES: dict[str, type[Oracle]] = {C.ORACLE_SIMULATED: SimulatedOracle, C.ORACLE_FILES: FilesOracle,
                                    C.ORACLE_LABEL_STUDIO: LabelStudioOracle}

__all__ = ["ORACLES", "LabelStudioError", "Oracle", "OracleClient", "Revealed", "WaitingForAnswers", "build_oracle"]


def build_oracle(cfg: Config) -> Oracle:
    """The oracle the configuration names (parseit has checked the name against constants.ORACLES)."""
    return ORACLES[cfg.oracle](cfg)
