"""Which samples are labelled, pseudo-labelled, pending with the oracle, or still in the pool.

One object per round, built from the previous round's state (in the spirit of baal's
ActiveLearningDataset): every task, strategy and oracle reads the round's sets from it instead of
rebuilding them, and the round's state is written from it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import constants as C
from al.state import RoundState


@dataclass(frozen=True)
class Ledger:
    ids: tuple[str, ...]                                          # the pool: every train id, in fold order
    labelled: list[str]                                           # L_r: fully annotated, sorted
    pending: list[str]                                            # what round r takes in from the oracle
    pseudo: dict[str, str] = field(default_factory=dict)          # P_{r-1}: id -> its labelled kNN mate
    revealed: dict[str, set[int]] = field(default_factory=dict)   # region-level: id -> regions revealed so far

    @classmethod
    def for_round(cls, ids: Sequence[str], previous: RoundState | None, single_round: bool,
                  initial: Callable[[], list[str]]) -> Ledger:
        """L_r: every id (single-round methods), the initial draw at round 0, else L_{r-1} plus U'_r
        (region-level rounds keep L_0 and reveal regions of other images)."""
        if single_round:
            labelled = sorted(ids)
        elif previous is None:
            labelled = sorted(initial())
        elif previous.unit == C.UNIT_REGION:
            labelled = sorted(previous.labelled)
        else:
            labelled = sorted(set(previous.labelled) | set(previous.selected))
        return cls(tuple(ids), labelled, pending_ids(previous, labelled),
                   dict(previous.pseudo_pairs) if previous else {}, revealed_regions(previous))

    @property
    def unlabelled(self) -> list[str]:
        """The pool's ids not in L_r, in fold order (the candidates of the oracle's next pick)."""
        taken = set(self.labelled)
        return [i for i in self.ids if i not in taken]

    def revealed_lists(self) -> dict[str, list[int]]:
        return {u: sorted(k) for u, k in self.revealed.items()}

    def problem(self, state: RoundState) -> str | None:
        """What a (hand-edited) previous state says that the next round cannot build on: ids the pool does not
        have, an id twice in a list, or a pick of an id already labelled (the next round would train on fewer
        images than it reports)."""
        labelled, selected = set(state.labelled), set(state.selected)
        unknown = sorted((labelled | selected | set(state.pseudo_pairs)) - set(self.ids))
        if unknown:
            return (f"names samples that are not in the train set of the fold ({', '.join(unknown[:3])}"
                    f"{' ...' if len(unknown) > 3 else ''})")
        for name in ("labelled", "selected"):
            twice = min((i for i, n in Counter(getattr(state, name)).items() if n > 1), default=None)
            if twice is not None:
                return f"names {twice} twice in '{name}'"
        again = sorted(labelled & selected)
        return f"selects {again[0]}, which is already labelled" if again else None


def pending_ids(previous: RoundState | None, labelled: Sequence[str]) -> list[str]:
    """The ids round r takes in from the oracle: L_0 at round 0, then the previous round's pick."""
    if previous is None:
        return sorted(labelled)
    return sorted(previous.selected_regions) if previous.unit == C.UNIT_REGION else sorted(previous.selected)


def revealed_regions(previous: RoundState | None) -> dict[str, set[int]]:
    """The regions revealed before round r: those of round r-1 plus its region pick."""
    if previous is None:
        return {}
    out = {u: set(k) for u, k in previous.revealed.items()}
    for u, k in previous.selected_regions.items():
        out.setdefault(u, set()).update(k)
    return dict(sorted(out.items()))
