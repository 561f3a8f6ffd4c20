"""What a person receives when they are the oracle: one folder per request (`to_annotate/`).

A round's pick becomes files that an annotator can work from in the tool they already use:

    ranking.csv                 every candidate: id, image, rank, score, class, strategy, picked first
                                (the per-image score file that annotation services ingest)
    label_studio_config.xml     labelling interface: brush and polygon for the class "foreground"
                                (label maps: one label per class)
    label_studio_tasks.json     one task per picked image, with the model's mask as a brush
                                pre-annotation (brush RLE) so that the annotator corrects it; the
                                images are Label Studio local files relative to its document root
                                (exp_root), shown once the project has a Local files storage on a
                                folder above them (the run folder)
    images/<id>.png             the picked image
    predictions/<id>.png        the model's mask (0/255; label maps: one colour per class)
    overlays/<id>.png           the model's mask over the image (label maps: its class colours)
    heatmaps/<id>.png           the model's uncertainty: binary entropy of its foreground probability
                                (label maps: the entropy of the class distribution, over log K)
    regions/<id>.png            region unit: the image with everything but the picked regions dimmed
    index.html                  a self-contained gallery of the picked images, ranked, with the
                                heat-maps' colour scale
    answers/                    where the next round looks for <id>.png masks by default (and for
                                no_foreground.txt: the ids of images that truly have no foreground)

The request for the initial labelled set L_0 has no model yet: no predictions, heat-maps or
pre-annotations, and no scores (the rank follows the ids).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image

from al.brush_rle import encode as encode_rle
from atomic_io import atomic_write_bytes, atomic_write_text
from constants import IGNORE as IGNORE_VALUE

REQUEST_DIR = "to_annotate"   # a round's request for its pick, in its round folder
ANSWERS_DIR = "answers"
LABEL_STUDIO_CONFIG_FILE = "label_studio_config.xml"
LABEL_STUDIO_TASKS_FILE = "label_studio_tasks.json"
FOREGROUND = "foreground"
BRUSH_NAME = "mask"
POLYGON_NAME = "outline"
IMAGE_NAME = "image"
# How a person says an image truly has no foreground (an empty answer is refused otherwise, al/answers.py):
# a choice of the Label Studio interface, or the id listed in this file of the answers folder.
NO_FOREGROUND_NAME = "empty"
NO_FOREGROUND = "no foreground"
NO_FOREGROUND_FILE = "no_foreground.txt"
# Side of the thumbnails embedded in index.html (the full-size PNGs sit beside it).
THUMBNAIL_SIDE = 320
# Brightness kept outside the picked regions in regions/<id>.png.
DIMMED = 0.3
# Opacity of the model's mask drawn over the image in overlays/<id>.png, and its colour (binary masks).
OVERLAY_ALPHA = 0.45
OVERLAY_COLOUR = (255, 0, 0)
HEAT_MAP = "inferno"



def class_colours(n: int) -> np.ndarray:
    """(n, 3) uint8 distinct colours of the classes of a label map (tab20, then repeated)."""
    return (np.asarray(colormaps["tab20"].colors)[np.arange(n) % 20] * 255).round().astype(np.uint8)


def label_studio_config(classes: Sequence[str] | None = None) -> str:
    """The labelling interface: brush and polygon for the foreground, or one label per class of a label map."""
    if classes is None:
        header, brush, polygon = "draw the foreground, correct the model's mask", \
            [(FOREGROUND, "#ff0000")], [(FOREGROUND, "#00a0ff")]
    else:
        header = "paint every class, correct the model's map (unpainted pixels: background, or unlabelled)"
        brush = polygon = [(name, "#" + "".join(f"{int(v):02x}" for v in colour))
                           for name, colour in zip(classes, class_colours(len(classes)))]

    def labels(items: list[tuple[str, str]]) -> str:
        return "".join(f'    <Label value="{html.escape(name)}" background="{colour}"/>\n' for name, colour in items)

    return (f'<View>\n  <Header value="$sample_id (rank $rank): {header}"/>\n'
            f'  <Image name="{IMAGE_NAME}" value="$image" zoom="true"/>\n'
            f'  <BrushLabels name="{BRUSH_NAME}" toName="{IMAGE_NAME}">\n{labels(brush)}  </BrushLabels>\n'
            f'  <PolygonLabels name="{POLYGON_NAME}" toName="{IMAGE_NAME}" strokeWidth="2">\n{labels(polygon)}'
            "  </PolygonLabels>\n"
            f'  <Choices name="{NO_FOREGROUND_NAME}" toName="{IMAGE_NAME}" choice="single">\n'
            f'    <Choice value="{NO_FOREGROUND}" hint="tick only if the image truly has no foreground"/>\n'
            "  </Choices>\n</View>\n")


LABEL_STUDIO_CONFIG = label_studio_config()


@dataclass
class RankedCandidate:
    """One row of ranking.csv."""

    id: str
    image: str                # the image's path as the fold lists it (relative to the data root)
    label: str                # class name ("" where images have no class, e.g. label maps)
    score: float | None       # the strategy's score (None: the strategy does not score, e.g. Random)
    picked: bool


@dataclass
class PickedImage:
    """What the annotator sees of one picked image; arrays at the image's original resolution."""

    id: str
    image: np.ndarray                    # (H, W, 3) uint8
    prediction: np.ndarray | None        # (H, W) 0/1, the model's mask (label map: class indices)
    probability: np.ndarray | None       # (H, W) float foreground probability (label map: None)
    regions: np.ndarray | None = None    # (H, W) bool, the pixels to annotate (region unit); None: all
    uncertainty: np.ndarray | None = None   # label map: (H, W) entropy of the class distribution, in [0, 1]


def ranked(candidates: Sequence[RankedCandidate]) -> list[RankedCandidate]:
    """The picked first, then the rest; each part by decreasing score, the unscored last, ties by id."""
    def key(c: RankedCandidate) -> tuple:
        return (not c.picked, c.score is None, 0.0 if c.score is None else -c.score, c.id)
    return sorted(candidates, key=key)


def write_request(folder: Path, title: str, strategy: str, candidates: Sequence[RankedCandidate],
                  picked: Sequence[PickedImage], document_root: Path, published: Path | None = None,
                  classes: Sequence[str] | None = None) -> None:
    """Write the request folder. `document_root` is Label Studio's local-files root: the tasks name the
    images relative to it, at `published`, where the folder will live once its round is published
    (default: `folder`). With `classes`, the answers asked for are label maps of those classes. Every file
    is written whole or not at all."""
    order = ranked(candidates)
    rank = {c.id: k + 1 for k, c in enumerate(order)}
    by_id = {c.id: c for c in order}
    images = sorted(picked, key=lambda p: rank[p.id])
    (folder / ANSWERS_DIR).mkdir(parents=True, exist_ok=True)
    _write_ranking(folder / "ranking.csv", order, rank, strategy)
    files: dict[str, dict[str, Path]] = {}
    for item in images:
        files[item.id] = _write_pictures(folder, item, classes)
    atomic_write_text(folder / LABEL_STUDIO_CONFIG_FILE, label_studio_config(classes))
    final = (published or folder).resolve()
    tasks = [label_studio_task(item, final / files[item.id]["image"].relative_to(folder), rank[item.id],
                               by_id[item.id].score, title, document_root, classes) for item in images]
    atomic_write_text(folder / LABEL_STUDIO_TASKS_FILE, json.dumps(tasks, indent=1) + "\n")
    atomic_write_text(folder / "index.html", _gallery(title, strategy, images, files, rank, by_id, classes))


def heat_colours(probability: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 picture of the binary entropy of a probability map (0 certain, 1 bit unsure)."""
    p = np.clip(probability.astype(np.float64), 1e-7, 1 - 1e-7)
    entropy = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return _heat(entropy)


def _heat(unit: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 colours of values in [0, 1] on the heat-map scale."""
    return (colormaps[HEAT_MAP](np.clip(unit, 0, 1))[..., :3] * 255).round().astype(np.uint8)


def overlay(image: np.ndarray, prediction: np.ndarray, classes: Sequence[str] | None = None) -> np.ndarray:
    """(H, W, 3) uint8: the model's mask blended over the image (label maps: every class in its colour), so
    that the annotator sees where the model's answer lies on the object."""
    if classes is None:
        colours, painted = np.asarray(OVERLAY_COLOUR, dtype=np.float64), prediction > 0
    else:
        colours, painted = _class_picture(prediction, classes).astype(np.float64), prediction != IGNORE_VALUE
    blended = (1 - OVERLAY_ALPHA) * image.astype(np.float64) + OVERLAY_ALPHA * colours
    return np.where(painted[..., None], blended, image).round().astype(np.uint8)


def _class_picture(label_map: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """(H, W, 3) uint8: each pixel in its class's colour."""
    return class_colours(len(classes))[np.minimum(label_map, len(classes) - 1)]


def _write_ranking(path: Path, order: Sequence[RankedCandidate], rank: dict[str, int], strategy: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "image", "rank", "score", "class", "strategy", "picked"])
    for c in order:
        writer.writerow([c.id, c.image, rank[c.id], "" if c.score is None else repr(float(c.score)), c.label,
                         strategy, int(c.picked)])
    atomic_write_text(path, buffer.getvalue())


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_pictures(folder: Path, item: PickedImage, classes: Sequence[str] | None) -> dict[str, Path]:
    pictures = {"image": item.image}
    if item.prediction is not None:
        pictures["prediction"] = (item.prediction > 0).astype(np.uint8) * 255 if classes is None else \
            _class_picture(item.prediction, classes)
        pictures["overlay"] = overlay(item.image, item.prediction, classes)
    if item.probability is not None:
        pictures["heatmap"] = heat_colours(item.probability)
    elif item.uncertainty is not None:
        pictures["heatmap"] = _heat(item.uncertainty)
    if item.regions is not None:
        dimmed = (item.image * DIMMED).astype(np.uint8)
        pictures["regions"] = np.where(item.regions[..., None], item.image, dimmed)
    subfolders = {"image": "images", "prediction": "predictions", "overlay": "overlays", "heatmap": "heatmaps",
                  "regions": "regions"}
    paths = {}
    for kind, array in pictures.items():
        path = folder / subfolders[kind] / f"{item.id}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, png(array))
        paths[kind] = path
    return paths


def _brush(mask: np.ndarray, label: str) -> dict:
    height, width = mask.shape
    return {"from_name": BRUSH_NAME, "to_name": IMAGE_NAME, "type": "brushlabels", "original_width": width,
            "original_height": height, "image_rotation": 0,
            "value": {"format": "rle", "rle": encode_rle(mask), "brushlabels": [label]}}


def label_studio_task(item: PickedImage, image_path: Path, rank: int, score: float | None, model_version: str,
                      document_root: Path, classes: Sequence[str] | None = None) -> dict:
    """One Label Studio task: the image as a local file below document_root, the model's mask as a prediction."""
    relative = image_path.relative_to(document_root.resolve())
    task: dict = {"data": {IMAGE_NAME: f"/data/local-files/?d={relative.as_posix()}", "sample_id": item.id,
                           "rank": rank, "score": score}}
    if item.prediction is not None:
        result = [_brush(item.prediction > 0, FOREGROUND)] if classes is None else \
            [_brush(item.prediction == k, name) for k, name in enumerate(classes) if (item.prediction == k).any()]
        # The run and round, so that the rounds' pre-annotations can be told apart in one project.
        task["predictions"] = [{"model_version": model_version, "score": score, "result": result}]
    return task


def _thumbnail(path: Path) -> str:
    """The picture as a PNG data URI no larger than THUMBNAIL_SIDE, so that index.html stands alone."""
    with Image.open(path) as image:
        image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.NEAREST)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


_CAPTIONS = {"image": "image", "regions": "regions to annotate", "overlay": "model's answer over the image",
             "heatmap": "uncertainty (entropy)"}
_STYLE = """body{font-family:sans-serif;margin:1.5em;background:#fafafa;color:#222}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.8em;margin:0 0 1em 0}
.card h2{font-size:1.05em;margin:0 0 .5em 0}.row{display:flex;gap:.8em;flex-wrap:wrap}
figure{margin:0}figcaption{font-size:.8em;color:#555;text-align:center}
img{width:240px;height:auto;display:block;image-rendering:pixelated}
.scale{width:240px;height:10px;margin-top:.3em}.ends{display:flex;justify-content:space-between;font-size:.75em}"""


def _colour_scale(classes: Sequence[str] | None) -> str:
    """The heat-map's colour bar, from certain (0) to most unsure (1 bit; label maps: log K)."""
    stops = ", ".join("#" + "".join(f"{int(v):02x}" for v in colour) for colour in _heat(np.linspace(0, 1, 11)))
    top = "1 bit" if classes is None else "log K"
    return (f'<div class="scale" style="background:linear-gradient(to right, {stops})"></div>'
            f'<div class="ends"><span>0 certain</span><span>{top} unsure</span></div>')


def _gallery(title: str, strategy: str, images: Sequence[PickedImage], files: dict[str, dict[str, Path]],
             rank: dict[str, int], by_id: dict[str, RankedCandidate], classes: Sequence[str] | None = None) -> str:
    answer = f"0 background, 255 {FOREGROUND}" if classes is None else \
        ("the class index of each pixel: " + ", ".join(f"{k} {html.escape(c)}" for k, c in enumerate(classes)) +
         f"; {IGNORE_VALUE} unlabelled")
    scale = _colour_scale(classes)
    cards = []
    for item in images:
        c = by_id[item.id]
        score = "no score" if c.score is None else f"score {c.score:.4g}"
        figures = []
        for kind in ("image", "regions", "overlay", "heatmap"):
            if kind in files[item.id]:
                path = files[item.id][kind]
                link = html.escape(f"{path.parent.name}/{path.name}")
                figures.append(f'<figure><a href="{link}"><img src="{_thumbnail(path)}" '
                               f'alt="{html.escape(item.id)} {_CAPTIONS[kind]}"></a>'
                               f"{scale if kind == 'heatmap' else ''}"
                               f"<figcaption>{_CAPTIONS[kind]}</figcaption></figure>")
        heading = " &middot; ".join(html.escape(part) for part in (item.id, c.label, score) if part)
        cards.append(f'<div class="card" id="{html.escape(item.id)}"><h2>#{rank[item.id]} {heading}</h2>'
                     f'<div class="row">{"".join(figures)}</div></div>')
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p>{len(images)} images picked by {html.escape(strategy)}, most informative first. Save each "
            f"answer as <code>{ANSWERS_DIR}/&lt;id&gt;.png</code> ({answer}); an image that truly has no "
            f"foreground is listed in <code>{ANSWERS_DIR}/{NO_FOREGROUND_FILE}</code> (one id per line; an empty "
            "mask is refused otherwise). Or import <code>label_studio_tasks.json</code> into a Label Studio "
            "project made with <code>label_studio_config.xml</code> (its images show once the project has a Local "
            f"files storage on the run folder; tick &ldquo;{NO_FOREGROUND}&rdquo; for an image without "
            "foreground). The full ranking is in <code>ranking.csv</code>.</p>"
            f"{''.join(cards)}</body></html>\n")
