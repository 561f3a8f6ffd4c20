"""The three axes are registries dispatched once: main.py reads as the algorithm and branches on no
task, method or oracle name."""

from __future__ import annotations

import ast
from pathlib import Path

import constants as C
from al.ledger import Ledger
from al.methods import METHODS
from al.state import BestEpoch, RoundState, RunFolder
from oracles import ORACLES, build_oracle
from oracles.simulated import SimulatedOracle
from parseit import parse_config
from tasks import TASKS

MAIN = Path(__file__).resolve().parents[1] / "main.py"


def test_every_task_and_oracle_name_has_its_plug_in() -> None:
    assert set(TASKS) == set(C.TASKS)
    assert set(ORACLES) == set(C.ORACLES)
    assert isinstance(build_oracle(parse_config(["--yaml", "synthetic.yaml"])), SimulatedOracle)


def test_main_is_short_and_branches_on_no_name() -> None:
    source = MAIN.read_text()
    tree = ast.parse(source)
    assert len(source.splitlines()) < 350
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno + 1 > 60]
    assert not long
    for needle in ("cfg.task", ".pseudo_labels", "al_type ==", "cfg.oracle", "TASK_", "ORACLE_"):
        assert needle not in source, f"main.py branches on {needle}"


def test_the_simulated_oracle_reveals_what_the_ledger_says_is_pending(tmp_path: Path) -> None:
    previous = RoundState(round=0, method="Random", seed=0, dataset="synthetic", n_train=4, labelled=["a"],
                          selected=["c", "b"], exhausted=False, best=BestEpoch(0, 0, 0.0), metrics={}, history={})
    ledger = Ledger.for_round(("a", "b", "c", "d"), previous, single_round=False, initial=list)
    oracle = ORACLES[C.ORACLE_SIMULATED](parse_config(["--yaml", "synthetic.yaml"]))
    with RunFolder(tmp_path / "run") as run:
        revealed = oracle.reveal(run, 1, ledger, True, client=None)
    assert list(revealed.provenance) == ["b", "c"]
    assert all(p["source"] == C.SOURCE_SIMULATED for p in revealed.provenance.values())
    assert METHODS[C.LABEL_PROP].pseudo_labels
