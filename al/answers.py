"""A person's answers to a request, checked whole before the run trusts any of them.

Two forms are read:
- a folder of `<id>.png` masks. Rule: the PNG is read as greyscale (RGB is converted) and must hold
  only the values 0 and 255 (background, foreground) or only 0 and 1; anything else is refused
  as non-binary, so an anti-aliased or soft mask is never thresholded silently. Files that are not
  PNG are ignored, except `no_foreground.txt` (below).
- a Label Studio JSON export (Export -> JSON) of the project made from the request's tasks. Each
  task names its image by `data.sample_id`; its latest annotation that was not skipped counts
  (the largest annotation id). Brush results (RLE) are foreground where their alpha is above 127;
  polygon results (points in % of the image) are filled; several results are united.

With `classes` (the segmentation task's K classes) an answer is a label map instead: PNG values are
class indices 0..K-1, or 255 for pixels left unlabelled (ignored); in an export each brush or polygon
result names its class, later results are painted over earlier ones, and unpainted pixels are the
class "background" when the dataset has one, else 255.

An empty answer (no foreground drawn; a label map of nothing but background and unlabelled pixels) is
what a person who forgot to draw, or pressed Submit by mistake, leaves: it is refused unless the answer
says the image has no foreground. In a folder the id is listed in `no_foreground.txt` (one id per
line; its PNG may then be left out); in Label Studio the choice "no foreground" of the labelling
interface is ticked. Regions drawn on an image declared empty are refused too.

Every picked id must be answered, no other id may be, and each mask must have its image's size.
All problems are gathered and reported in one line (AnswerError); nothing is half-read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from al.brush_rle import decode as decode_rle
from al.request import NO_FOREGROUND, NO_FOREGROUND_FILE, NO_FOREGROUND_NAME
from constants import IGNORE, SOURCE_FILE, SOURCE_LABEL_STUDIO

# Brush alpha above this is foreground (Label Studio paints 255; soft edges stay below half).
BRUSH_THRESHOLD = 127
# The class that unpainted pixels of a K-class export belong to, when the dataset has it.
BACKGROUND = "background"
# PNG modes whose values are a label map's class indices (greyscale, palette, 16-bit greyscale).
LABEL_MAP_MODES = ("L", "P", "I;16", "I")
# Ids named in a message before "and N more".
MAX_IDS_SHOWN = 5


class AnswerError(ValueError):
    """The answers cannot be used; the message names the ids, the problem and the fix."""


@dataclass
class Answer:
    mask: np.ndarray           # (H, W) uint8 0/1, or class indices (255: unlabelled) with `classes`
    source: str                # constants.SOURCE_FILE or SOURCE_LABEL_STUDIO
    reference: str             # the PNG's path, or the Label Studio task and annotation ids
    lead_time: float | None    # seconds the annotator spent (Label Studio exports), None if unknown


def has_answers(source: Path) -> bool:
    """Whether anything is there to read: an export file, or a folder with a PNG or a no_foreground.txt."""
    if source.is_file():
        return True
    return source.is_dir() and any(p.suffix.lower() == ".png" or p.name == NO_FOREGROUND_FILE
                                   for p in source.iterdir())


def read_answers(source: Path, ids: Sequence[str], sizes: Mapping[str, tuple[int, int]],
                 classes: Sequence[str] | None = None) -> dict[str, Answer]:
    """The answer of every id in `ids` from a PNG folder or a Label Studio export; sizes are (H, W). With
    `classes`, answers are label maps of those classes (binary masks otherwise)."""
    if source.is_dir():
        return _read_folder(source, ids, sizes, classes)
    if source.suffix.lower() != ".json":
        raise AnswerError(f"answers {source} are neither a folder of <id>.png masks nor a Label Studio JSON "
                          "export (.json): pass --oracle_answers with one of those")
    return _read_label_studio(source, ids, sizes, classes)


def _listed(ids: Sequence[str]) -> str:
    shown = ", ".join(sorted(ids)[:MAX_IDS_SHOWN])
    return shown + (f" and {len(ids) - MAX_IDS_SHOWN} more" if len(ids) > MAX_IDS_SHOWN else "")


class _Problems:
    """Problems gathered over every answer, reported together in one line."""

    def __init__(self, source: Path):
        self.source = source
        self.by_kind: dict[str, list[str]] = {}

    def add(self, kind: str, sample_id: str) -> None:
        self.by_kind.setdefault(kind, []).append(sample_id)

    def raise_any(self) -> None:
        if self.by_kind:
            parts = [f"{kind} ({_listed(ids)})" for kind, ids in self.by_kind.items()]
            raise AnswerError(f"answers in {self.source}: " + "; ".join(parts) +
                              ": fix those answers and run the same command again")


def _empty(mask: np.ndarray, classes: Sequence[str] | None) -> bool:
    """No foreground: nothing drawn, or a label map of only background and unlabelled pixels."""
    if classes is None:
        return not mask.any()
    return bool(np.isin(mask, [_unpainted(classes), IGNORE]).all())


def _unpainted(classes: Sequence[str]) -> int:
    """The value of pixels nobody painted: the class "background" when the dataset has it, else IGNORE."""
    return list(classes).index(BACKGROUND) if BACKGROUND in classes else IGNORE


def _check_empty(problems: _Problems, sample_id: str, mask: np.ndarray, declared: bool,
                 classes: Sequence[str] | None, how: str) -> bool:
    """Whether the answer may be used: an empty one only when declared so, a declared one only when empty."""
    empty = _empty(mask, classes)
    if empty and not declared:
        problems.add(f"empty (nothing drawn: draw the {'classes' if classes else 'foreground'}, or {how} if the "
                     "image has no foreground)", sample_id)
    elif declared and not empty:
        problems.add("declared without foreground but foreground drawn (erase it, or withdraw the declaration)",
                     sample_id)
    return empty == declared


def _check_ids(problems: _Problems, given: Sequence[str], ids: Sequence[str], missing_hint: str) -> None:
    for sample_id in sorted(set(ids) - set(given)):
        problems.add(f"missing {missing_hint}", sample_id)
    for sample_id in sorted(set(given) - set(ids)):
        problems.add("not asked for", sample_id)


def _read_folder(folder: Path, ids: Sequence[str], sizes: Mapping[str, tuple[int, int]],
                 classes: Sequence[str] | None) -> dict[str, Answer]:
    problems = _Problems(folder)
    files = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() == ".png" and p.is_file()}
    declared = _declared_empty(folder / NO_FOREGROUND_FILE)
    given = set(files) | declared
    _check_ids(problems, list(given), ids, "<id>.png")
    answers = {}
    for sample_id in sorted(given & set(ids)):
        path = files.get(sample_id)
        mask = _read_png(problems, sample_id, path, sizes[sample_id], classes) if path else \
            np.full(sizes[sample_id], 0 if classes is None else _unpainted(classes), dtype=np.uint8)
        if mask is not None and _check_empty(problems, sample_id, mask, sample_id in declared, classes,
                                             f"list it in {NO_FOREGROUND_FILE}"):
            reference = str(path or folder / NO_FOREGROUND_FILE)
            answers[sample_id] = Answer(mask, SOURCE_FILE, reference, None)
    problems.raise_any()
    return answers


def _declared_empty(path: Path) -> set[str]:
    """The ids a person declared without foreground: one per line (blank lines and # comments skipped)."""
    if not path.is_file():
        return set()
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AnswerError(f"{path} cannot be read ({exc}): write one image id per line, as plain text") from None
    return {line.strip() for line in lines if line.strip() and not line.strip().startswith("#")}


def _read_png(problems: _Problems, sample_id: str, path: Path, size: tuple[int, int],
              classes: Sequence[str] | None) -> np.ndarray | None:
    """The answer in one PNG (0/1 mask, or class indices), or None with its problem recorded."""
    try:
        with Image.open(path) as image:
            image.load()
            if classes is not None and image.mode not in LABEL_MAP_MODES:
                problems.add(f"a {image.mode} image: save the class index of each pixel (a greyscale or "
                             "palette PNG), not colours", sample_id)
                return None
            # A palette PNG's values are its indices, as VOC's label maps are stored. A binary mask's
            # foreground may be drawn in any one colour (white, or red on black): its brightest channel.
            grey = np.asarray(image) if classes is not None else np.asarray(image.convert("RGB")).max(axis=-1)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        problems.add("not a readable PNG", sample_id)
        return None
    if grey.shape != tuple(size):
        problems.add(f"size differs from the image's (expected {_size(size)})", sample_id)
        return None
    values = set(np.unique(grey).tolist())
    if classes is not None:
        if not values <= {*range(len(classes)), IGNORE}:
            problems.add(f"values other than the class indices 0..{len(classes) - 1} and {IGNORE}", sample_id)
            return None
        return grey.astype(np.uint8)
    if not (values <= {0, 255} or values <= {0, 1}):
        problems.add("non-binary (use only 0 and 255)", sample_id)
        return None
    return (grey > 0).astype(np.uint8)


def _size(hw: tuple[int, int]) -> str:
    return f"{hw[1]}x{hw[0]} pixels"


def _read_label_studio(path: Path, ids: Sequence[str], sizes: Mapping[str, tuple[int, int]],
                       classes: Sequence[str] | None) -> dict[str, Answer]:
    def malformed(problem: str) -> AnswerError:
        return AnswerError(f"{path} is not a Label Studio JSON export ({problem}): export the project again "
                           "with Export -> JSON")

    try:
        tasks = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise malformed(f"invalid JSON: {exc}") from None
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and isinstance(t.get("data"), dict)
                                              for t in tasks):
        raise malformed("expected a list of tasks, each with a 'data' object")
    problems = _Problems(path)
    by_id: dict[str, dict] = {}
    for task in tasks:
        sample_id = task["data"].get("sample_id")
        if not isinstance(sample_id, str):
            raise malformed(f"task {task.get('id')} has no data.sample_id; make the project from the request's "
                            "label_studio_tasks.json")
        if sample_id in by_id:
            problems.add("in several tasks", sample_id)
        by_id[sample_id] = task
    annotated = {i: a for i, t in by_id.items() if (a := _latest_annotation(t, malformed)) is not None}
    _check_ids(problems, list(annotated), ids, "annotation")
    answers = {}
    for sample_id in sorted(set(annotated) & set(ids)):
        task, annotation = by_id[sample_id], annotated[sample_id]
        try:
            mask = _rasterise(annotation.get("result"), sizes[sample_id], classes)
        except _WrongSize:
            problems.add(f"size differs from the image's (expected {_size(sizes[sample_id])})", sample_id)
            continue
        except (ValueError, TypeError, KeyError) as exc:
            raise malformed(f"task {task.get('id')} ({sample_id}): {exc}") from None
        if not _check_empty(problems, sample_id, mask, _ticks_no_foreground(annotation.get("result")), classes,
                            f"tick '{NO_FOREGROUND}'"):
            continue
        lead = annotation.get("lead_time")
        answers[sample_id] = Answer(mask, SOURCE_LABEL_STUDIO,
                                    f"task {task.get('id')}, annotation {annotation.get('id')}",
                                    float(lead) if isinstance(lead, (int, float)) else None)
    problems.raise_any()
    return answers


def counts(annotation: dict) -> bool:
    """Whether a Label Studio annotation is an answer: a skipped one (was_cancelled) is not."""
    return not annotation.get("was_cancelled")


def _latest_annotation(task: dict, malformed: Any) -> dict | None:
    annotations = task.get("annotations", [])
    if not isinstance(annotations, list) or not all(isinstance(a, dict) for a in annotations):
        raise malformed(f"task {task.get('id')}: 'annotations' is not a list of objects")
    kept = [a for a in annotations if counts(a)]
    return max(kept, key=lambda a: a.get("id") or 0) if kept else None


def _ticks_no_foreground(results: Any) -> bool:
    """Whether the annotation ticks the labelling interface's "no foreground" choice."""
    return isinstance(results, list) and any(
        isinstance(r, dict) and r.get("type") == "choices" and r.get("from_name") == NO_FOREGROUND_NAME
        and NO_FOREGROUND in (r.get("value") or {}).get("choices", []) for r in results)


class _WrongSize(Exception):
    pass


def _rasterise(results: Any, hw: tuple[int, int], classes: Sequence[str] | None = None) -> np.ndarray:
    """The union of an annotation's brush and polygon regions as an (H, W) 0/1 mask; with `classes`, the label
    map they paint in order (unpainted: "background" when it is a class, else IGNORE)."""
    height, width = hw
    if not isinstance(results, list):
        raise TypeError("'result' is not a list")
    if classes is not None:
        labels = np.full((height, width), _unpainted(classes), dtype=np.uint8)
        for result, region in _regions(results, height, width):
            names = result["value"].get(result["type"], [])
            if len(names) != 1 or names[0] not in classes:
                raise ValueError(f"a region labelled {names}, expected one of the classes {', '.join(classes)}")
            labels[region] = list(classes).index(names[0])
        return labels
    mask = np.zeros((height, width), dtype=bool)
    for _, region in _regions(results, height, width):
        mask |= region
    return mask.astype(np.uint8)


def _regions(results: list, height: int, width: int) -> Iterator[tuple[dict, np.ndarray]]:
    """(result, (H, W) bool region) of every brush and polygon result, in order."""
    for result in results:
        kind = result.get("type")
        if kind not in ("brushlabels", "polygonlabels"):
            continue
        if (result.get("original_height", height), result.get("original_width", width)) != (height, width):
            raise _WrongSize
        value = result["value"]
        if kind == "brushlabels":
            if value.get("format") != "rle":
                raise ValueError(f"brush format {value.get('format')!r}, expected 'rle'")
            yield result, decode_rle(value["rle"], height, width) > BRUSH_THRESHOLD
        else:
            points = [(float(x) * width / 100, float(y) * height / 100) for x, y in value["points"]]
            if len(points) < 3:
                raise ValueError("a polygon with fewer than 3 points")
            canvas = Image.new("L", (width, height), 0)
            ImageDraw.Draw(canvas).polygon(points, fill=1)
            yield result, np.asarray(canvas, dtype=bool)
