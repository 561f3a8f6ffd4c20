"""Segment or classify new images with a finished round's model (round_<r>/model.pt).

    python predict.py --run exps/ph2/split_0-fold_0/Entropy-seed_0 --images new_images/ --out predictions/
    python predict.py --run RUN --round 2 --images a.png b.png --out OUT --label_studio

The model predicts as the round measured it: the run's preprocessing (evaluation views, or the size the
network was trained at), at each image's original resolution, with the round's threshold. Writes into --out
(engine/prediction.py): masks/<name>.png and overlays/<name>.png (tasks with masks), probabilities.csv, and
with --label_studio the Label Studio tasks with the masks as pre-annotations (images as local files below
--document_root, by default the images' common folder, which must be Label Studio's
LOCAL_FILES_DOCUMENT_ROOT or lie below it). Every image is checked before anything is written: a run or round
without a model, an unreadable image or one of another number of channels gets one line and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import constants as C
from al.methods import METHODS
from al.state import MODEL_FILE, STATE_FILE
from data.records import DataError
from engine.context import inference
from engine.prediction import (
    Predictor,
    check_images,
    image_files,
    label_studio_tasks,
    read_image,
    write_label_studio,
    write_predictions,
    write_probabilities,
)
from engine.round_model import RoundModel, RoundModelError, load_round_model
from engine.runtime import DeviceError, select_device
from parseit import exit_on_error
from tasks import build_task

# Images predicted together: the evaluation batches are formed within a chunk.
CHUNK = 64


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}: see python predict.py --help\n")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a run folder (<exp_root>/<dataset>/split_s-fold_f/<id>)")
    parser.add_argument("--round", type=int, default=None, help="the round whose model predicts (default: the "
                        "last round that kept its model)")
    parser.add_argument("--images", type=Path, nargs="+", required=True, help="image files or folders of images")
    parser.add_argument("--out", type=Path, required=True, help="folder the predictions are written to")
    parser.add_argument("--device", choices=C.DEVICES, default="auto")
    parser.add_argument("--cudaid", default="0")
    parser.add_argument("--label_studio", action="store_true", help="also write Label Studio pre-annotation tasks")
    parser.add_argument("--document_root", type=Path, default=None,
                        help="Label Studio's local-files document root (default: the images' common folder)")
    return parser.parse_args(argv)


def round_model_path(run: Path, r: int | None) -> Path:
    """The model file of round r, or of the last finished round that kept one."""
    if not run.is_dir() or not any(run.glob(f"round_[0-9][0-9][0-9]/{STATE_FILE}")):
        raise RoundModelError(f"{run} is not a run folder with a finished round: pass --run <exp_root>/<dataset>/"
                              "split_<s>-fold_<f>/<run id>")
    if r is not None:
        return run / f"round_{r:03d}" / MODEL_FILE
    kept = sorted(run.glob(f"round_[0-9][0-9][0-9]/{MODEL_FILE}"))
    if not kept:
        raise RoundModelError(f"{run} kept no round model (keep_models none, or a stage-1 WSL run, whose model is "
                              "theta0): run a stage-2 round with --keep_models last or all")
    return kept[-1]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with exit_on_error(RoundModelError, DataError, DeviceError, OSError):
        model = load_round_model(round_model_path(args.run, args.round))
        device = select_device(args.device, args.cudaid)
        infer = inference(model.config, device)
        predictor = build_task(model.config, METHODS[model.config.al_type], None, device).predictor(model, infer)
        files = image_files(args.images)
        check_images(files, predictor.channels)
        if args.label_studio and not predictor.with_masks:
            raise DataError(f"the {model.task} task predicts no mask, so there is nothing to pre-annotate: drop "
                            "--label_studio")
        root = document_root(files, args.document_root) if args.label_studio else None
        predict_all(args.out, files, predictor, model, root)
    print(f"{len(files)} images predicted with {model.path} (round {model.round}): {args.out}")


def document_root(files: Sequence[Path], given: Path | None) -> Path:
    root = (given or Path(os.path.commonpath([str(f.resolve().parent) for f in files]))).resolve()
    outside = next((f for f in files if not f.resolve().is_relative_to(root)), None)
    if outside is not None:
        raise DataError(f"{outside} is not below the document root {root}: pass --document_root with a folder "
                        "above every image")
    return root


def predict_all(out: Path, files: Sequence[Path], predictor: Predictor, model: RoundModel, root: Path | None) -> None:
    """The images in chunks; each chunk's files written as it is done, probabilities.csv and the tasks last (the
    tasks hold run-length encoded masks, so that no chunk's masks are kept for them)."""
    rows, tasks = [], []
    version = f"{model.path.parents[1].name} round {model.round}"
    classes = model.classes if predictor.label_map else None
    for start in range(0, len(files), CHUNK):
        chunk = files[start:start + CHUNK]
        images = [read_image(f) for f in chunk]
        predictions = predictor(images)
        rows += write_predictions(out, chunk, images, predictions, predictor.label_map, model.classes)
        if root is not None:
            tasks += label_studio_tasks(chunk, [p.mask for p in predictions], start + 1, root, version, classes)
    write_probabilities(out, rows, model.classes)
    if root is not None:
        write_label_studio(out, tasks, classes)


if __name__ == "__main__":
    main()
