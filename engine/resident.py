"""Samples prepared once and kept on the device: training views and evaluation batches.

Images are decoded and rescaled once per run (data.views); every epoch only crops, flips and
normalises tensors that already sit on the device, and evaluation batches images of the same
size together instead of running one image at a time.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from data.decoded import DecodedSample
from data.records import DataError, Fold
from data.views import EvalGeometry, Geometry, eval_view, train_view


@dataclass
class ResidentSet:
    """One subset on the device: uint8 images (N, 3, H, W) and their labels (int64 classes (N,), or uint8 label
    maps (N, H, W) for the segmentation task)."""

    ids: list[str]
    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def labels_np(self) -> np.ndarray:
        return self.labels.cpu().numpy()


@dataclass
class ResidentSplits:
    """A fold's three subsets on the device."""

    fold: Fold
    train: ResidentSet
    valid: ResidentSet
    test: ResidentSet
    position: dict[str, int] = field(init=False)   # train id -> row, built once

    def __post_init__(self) -> None:
        self.position = {i: k for k, i in enumerate(self.train.ids)}


@dataclass
class EvalBatch:
    positions: list[int]          # positions in the EvalSet
    images: Tensor                # (B,3,h,w) uint8 evaluation views, on the device
    masks: Tensor | None          # (B,1,H,W) uint8 true masks at original resolution, on the device
    labels: Tensor                # (B,) int64, on the device
    geometry: EvalGeometry        # shared by the whole batch (same original size)
    set_uid: int = -1             # the EvalSet's uid

    @property
    def keys(self) -> list[tuple[int, int]]:
        """(set uid, position) of each image: what caches name them by (models/frozen.py)."""
        return [(self.set_uid, p) for p in self.positions]


_SET_IDS = itertools.count()


class EvalSet:
    """Evaluation views of a list of samples, grouped by original size so that batches stack."""

    def __init__(self, samples: Sequence[DecodedSample], geometry: Geometry, device: torch.device,
                 batch_size: int):
        self.ids = [s.id for s in samples]
        self.labels = np.array([s.label for s in samples], dtype=np.int64)
        self.device = device
        self.batch_size = batch_size
        self._views: list[Tensor] = []
        self._masks: list[Tensor | None] = []
        self._geometry: list[EvalGeometry] = []
        for s in samples:
            view, geom = eval_view(s.image, geometry)
            self._views.append(view.to(device))
            self._masks.append(None if s.mask is None else s.mask.to(device))
            self._geometry.append(geom)
        self._labels_device = torch.as_tensor(self.labels, device=device)
        self._full: list[EvalBatch] | None = None
        self.uid = next(_SET_IDS)   # names the set's images in caches (models/frozen.py)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def has_masks(self) -> bool:
        return all(m is not None for m in self._masks)

    def mask(self, position: int) -> Tensor | None:
        return self._masks[position]

    def batches(self, positions: Sequence[int] | None = None) -> Iterator[EvalBatch]:
        """Batches of same-size images, in a deterministic order; the whole set is stacked once."""
        if positions is None:
            if self._full is None:
                self._full = list(self._make_batches(range(len(self))))
            yield from self._full
        else:
            yield from self._make_batches(positions)

    def _make_batches(self, positions: Sequence[int] | range) -> Iterator[EvalBatch]:
        groups: dict[tuple, list[int]] = {}
        for p in positions:
            groups.setdefault((self._geometry[p], self._masks[p] is None), []).append(p)
        for (geom, no_mask), members in groups.items():
            for start in range(0, len(members), self.batch_size):
                chunk = members[start:start + self.batch_size]
                masks = None if no_mask else torch.stack([self._masks[p] for p in chunk]).unsqueeze(1)
                yield EvalBatch(positions=chunk, images=torch.stack([self._views[p] for p in chunk]),
                                masks=masks, labels=self._labels_device[chunk], geometry=geom, set_uid=self.uid)


@dataclass
class TrainingItems:
    """What one training cycle fits: views, targets and tags (L / PL), all on the device."""

    images: list[Tensor]            # (3,h,w) uint8 training views
    masks: list[Tensor | None]      # (h,w) uint8 0/1 masks in the same geometry, None for labels only
    labels: Tensor                  # (n,) int64
    tags: Tensor                    # (n,) int64 (constants.L / PL / U)

    def __len__(self) -> int:
        return len(self.images)


class TrainPool:
    """Training views of the whole train set, prepared once; cycles pick from it by position."""

    def __init__(self, samples: Sequence[DecodedSample], geometry: Geometry, device: torch.device):
        self.ids = [s.id for s in samples]
        self.position = {s.id: i for i, s in enumerate(samples)}
        self.labels = np.array([s.label for s in samples], dtype=np.int64)
        self.geometry = geometry
        self.device = device
        self._samples = samples
        self._views: list[Tensor] = []
        self._masks: list[Tensor | None] = []
        for s in samples:
            image, mask = train_view(s.image, s.mask, geometry)
            self._views.append(image.to(device))
            self._masks.append(None if mask is None else mask.to(device))

    def __len__(self) -> int:
        return len(self.ids)

    def mask_view(self, position: int, mask: Tensor) -> Tensor:
        """A mask at original resolution (e.g. a pseudo-mask) brought to the training geometry."""
        _, view = train_view(self._samples[position].image, mask, self.geometry)
        return view.to(self.device)

    def items(self, entries: Sequence[tuple[int, int, Tensor | None]], with_masks: bool = True) -> TrainingItems:
        """Items from (position, tag, mask view or None for the true mask) triples.

        A sample used for segmentation without a mask is a problem of the data set, not of the
        code: a one-line DataError naming the sample.
        """
        masks: list[Tensor | None] = []
        for p, _, m in entries:
            masks.append((self._masks[p] if m is None else m) if with_masks else None)
        if with_masks and any(m is None for m in masks):
            missing = next(self.ids[p] for (p, _, _), m in zip(entries, masks) if m is None)
            raise DataError(f"sample {missing} has no mask but is used for segmentation: "
                            "give every pixel-labelled sample a mask in the dataset")
        positions = [p for p, _, _ in entries]
        return TrainingItems(images=[self._views[p] for p in positions], masks=masks,
                             labels=torch.as_tensor(self.labels[positions], device=self.device),
                             tags=torch.as_tensor([t for _, t, _ in entries], device=self.device))
