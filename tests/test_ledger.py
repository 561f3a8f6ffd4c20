"""The labelled/pool ledger: which ids each round trains on, takes in from the oracle, and leaves in the pool."""

from __future__ import annotations

from al.ledger import Ledger
from al.state import BestEpoch, RoundState

IDS = ("a", "b", "c", "d", "e", "f")


def _state(**kwargs: object) -> RoundState:
    base: dict[str, object] = {"round": 0, "method": "Random", "seed": 0, "dataset": "synthetic",
                               "n_train": len(IDS), "labelled": ["a", "b"], "selected": ["e"], "exhausted": False,
                               "best": BestEpoch(0, 0, 0.0), "metrics": {}, "history": {}}
    return RoundState(**{**base, **kwargs})


def test_round_zero_takes_the_initial_draw_and_asks_for_all_of_it() -> None:
    ledger = Ledger.for_round(IDS, None, single_round=False, initial=lambda: ["d", "b"])
    assert ledger.labelled == ["b", "d"]
    assert ledger.pending == ["b", "d"]
    assert ledger.unlabelled == ["a", "c", "e", "f"]
    assert ledger.pseudo == {} and ledger.revealed == {}


def test_a_later_round_adds_the_previous_pick_and_carries_the_pseudo_labels() -> None:
    previous = _state(selected=["f", "c"], pseudo_pairs={"d": "a"})
    ledger = Ledger.for_round(IDS, previous, single_round=False, initial=list)
    assert ledger.labelled == ["a", "b", "c", "f"]
    assert ledger.pending == ["c", "f"]
    assert ledger.unlabelled == ["d", "e"]
    assert ledger.pseudo == {"d": "a"}


def test_region_rounds_keep_l0_and_accumulate_the_revealed_regions() -> None:
    previous = _state(unit="region", selected=["c", "e"], revealed={"c": [1]},
                      selected_regions={"c": [4, 2], "e": [0]})
    ledger = Ledger.for_round(IDS, previous, single_round=False, initial=list)
    assert ledger.labelled == ["a", "b"]
    assert ledger.pending == ["c", "e"]
    assert ledger.revealed == {"c": {1, 2, 4}, "e": {0}}
    assert ledger.revealed_lists() == {"c": [1, 2, 4], "e": [0]}


def test_single_round_methods_label_the_whole_pool() -> None:
    ledger = Ledger.for_round(IDS, None, single_round=True, initial=lambda: ["a"])
    assert ledger.labelled == sorted(IDS) and ledger.unlabelled == []


def test_what_a_hand_edited_state_gets_wrong_is_named() -> None:
    ledger = Ledger.for_round(IDS, None, single_round=False, initial=lambda: ["a"])
    assert ledger.problem(_state()) is None
    assert "not in the train set of the fold (yy, zz)" in ledger.problem(
        _state(labelled=["a", "zz"], pseudo_pairs={"yy": "a"}))
    assert ledger.problem(_state(selected=["e", "c", "e"])) == "names e twice in 'selected'"
    assert ledger.problem(_state(labelled=["a", "b", "a"])) == "names a twice in 'labelled'"
    assert ledger.problem(_state(selected=["e", "b"])) == "selects b, which is already labelled"
