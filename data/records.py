"""Plain records shared by the data layer: what a dataset lists, what a fold holds, what goes wrong."""

from __future__ import annotations

from dataclasses import dataclass


class DataError(ValueError):
    """A problem with data on disk or with data arguments; the message is one line naming the fix."""


@dataclass(frozen=True)
class SampleRecord:
    """One sample as listed on disk; paths are relative to the dataset root so folds travel."""

    id: str
    image: str
    mask: str | None
    label: str


@dataclass(frozen=True)
class Listing:
    """Everything a reader finds: the train pool, the official test set (None if the dataset has none)
    and the class names in encoding order."""

    train: list[SampleRecord]
    test: list[SampleRecord] | None
    classes: list[str]


@dataclass(frozen=True)
class Fold:
    """One (split, fold): three disjoint subsets and the class order that fixes the label encoding."""

    train: list[SampleRecord]
    valid: list[SampleRecord]
    test: list[SampleRecord]
    classes: list[str]

    @property
    def encoding(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self.classes)}
