"""The simulated oracle: the dataset's own masks or labels, revealed the moment they are picked."""

from __future__ import annotations

import constants as C
from al.ledger import Ledger
from al.state import RunFolder
from oracles.base import Oracle, OracleClient, Revealed


class SimulatedOracle(Oracle):
    name = C.ORACLE_SIMULATED

    def reveal(self, run: RunFolder, r: int, ledger: Ledger, first: bool, client: OracleClient) -> Revealed:
        return Revealed({i: {"source": C.SOURCE_SIMULATED, "reference": None, "lead_time": None}
                         for i in ledger.pending})
