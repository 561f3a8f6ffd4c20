"""The typed round state: round trip, files of version 1 still read, bad files named clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from al.state import STATE_VERSION, BestEpoch, RoundState, RunFolder, RunStateError

FIXTURES = Path(__file__).parent / "fixtures" / "state_v1"


def test_version_1_files_still_read() -> None:
    for path in sorted(FIXTURES.glob("*.json")):
        payload = json.loads(path.read_text())
        assert "version" not in payload
        state = RoundState.from_json(payload, path)
        assert state.version == STATE_VERSION and state.best.member == 0
        assert state.n_labelled == payload["n_labelled"]
        assert state.percent_labelled == pytest.approx(payload["percent_labelled"])
        assert state.metric("test", "dice_idx") == pytest.approx(payload["metrics"]["test"]["dice_idx"])
    lp = RoundState.from_json(json.loads((FIXTURES / "label_prop_round1.json").read_text()))
    assert lp.pseudo_pairs and lp.n_pseudo_trained > 0 and lp.pseudo_threshold is not None
    wsl = RoundState.from_json(json.loads((FIXTURES / "wsl.json").read_text()))
    assert wsl.theta0 and wsl.scores == {} and wsl.test_dice_per_image == {}


def test_round_trip_through_json() -> None:
    state = RoundState(round=2, method="Ensemble", seed=1, dataset="synthetic", n_train=4, labelled=["a", "b"],
                       selected=["c"], exhausted=False, best=BestEpoch(3, 0, 0.5, member=2),
                       metrics={"test": {"dice_idx": 70.0}}, history={"cycle0": {"loss": [1.0], "valid": [0.5]}},
                       scores={"c": 0.3, "d": 0.1}, threshold=0.4)
    payload = json.loads(json.dumps(state.to_json()))
    assert payload["n_labelled"] == 2 and payload["percent_labelled"] == 50.0 and payload["version"] == STATE_VERSION
    assert RoundState.from_json(payload) == state


@pytest.mark.parametrize(("change", "words"), [
    (lambda p: p.pop("labelled"), "key 'labelled' is missing"),
    (lambda p: p.update(round="2"), "key 'round' has type str"),
    (lambda p: p.update(exhausted=1), "key 'exhausted' has type int"),
    (lambda p: p.update(n_train=True), "key 'n_train' has type bool"),
    (lambda p: p.update(best={"epoch": 1}), "best"),
    (lambda p: p.update(version=STATE_VERSION + 1), "state version"),
])
def test_bad_files_are_named(change: object, words: str) -> None:
    payload = json.loads((FIXTURES / "mc_dropout.json").read_text())
    change(payload)
    with pytest.raises(RunStateError, match=words) as info:
        RoundState.from_json(payload, "round_000/state.json")
    assert "\n" not in str(info.value)


def test_run_folder_created_by_a_refused_call_is_removed(tmp_path: Path) -> None:
    with RunFolder(tmp_path / "run"):
        pass
    assert not (tmp_path / "run").exists()
    (tmp_path / "kept").mkdir()
    with RunFolder(tmp_path / "kept"):
        pass
    assert (tmp_path / "kept").is_dir()
