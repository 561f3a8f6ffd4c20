"""Make the train/valid/test folds of a dataset (method-spec 1.2) and write them as CSVs.

    python create_folds.py --dataset ph2 --data_root ../shared/data/ph2
    python create_folds.py --dataset synthetic --data_root datasets/synthetic
    python create_folds.py --dataset glas --from_original <paper repo>/folds/glas
    python create_folds.py --dataset digits
    python create_folds.py --dataset cifar10 --data_root ../shared/data/cifar10
    python create_folds.py --dataset scenes --data_root datasets/scenes
    python create_folds.py --dataset cityscapes --data_root datasets/cityscapes

For `synthetic`, a missing set is first generated into --data_root with generate_synthetic's
defaults (seed 0, 40 images per class, 80x80 pixels, 3 classes); `scenes` likewise (seed 0, 120
images of 64x64 pixels, data/scenes.py). --from_original converts the
paper's own fold CSVs instead of drawing new folds. `digits` ships with scikit-learn and needs
no --data_root (one given is ignored). Folds that differ from those already in --out are refused
(the runs made with those would silently change meaning) unless --force is given; writing the same
folds again is harmless.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from constants import DATASETS, DIGITS, SCENES, SYNTHETIC
from data.folds import import_original_folds, load_fold, make_folds, write_folds
from data.readers import read_listing
from data.records import DataError
from data.scenes import LISTING, generate_scenes
from data.synthetic import generate_synthetic
from parseit import resolve_path

# folds/ of the repository; in an installed copy, of the working directory (parseit.work_root).
DEFAULT_FOLDS = resolve_path("folds")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--data_root", type=Path,
                        help=f"folder holding the dataset (not needed for {DIGITS})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fold draw")
    parser.add_argument("--nbr_splits", type=int, default=1)
    parser.add_argument("--nbr_folds", type=int, default=5)
    parser.add_argument("--valid_ratio", type=float, default=0.2, help="per class, rounded up")
    parser.add_argument("--test_ratio", type=float, default=0.2,
                        help="per class, only for datasets without an official test set")
    parser.add_argument("--out", type=Path, default=DEFAULT_FOLDS,
                        help="folds root (default: folds/ of the repository; installed: of the working directory)")
    parser.add_argument("--from_original", type=Path, metavar="DIR",
                        help="convert the paper's fold CSVs found under DIR instead")
    parser.add_argument("--force", action="store_true",
                        help="replace folds that differ from those already in --out (runs made with those depend on "
                             "them)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.from_original is None and args.data_root is None and args.dataset != DIGITS:
        parser.error(f"--data_root is required (unless --from_original is given or the dataset is {DIGITS})")
    try:
        if args.from_original is not None:
            written = import_original_folds(args.from_original, args.out, args.dataset, args.seed, args.force)
        else:
            if args.dataset == SYNTHETIC and not (args.data_root / "labels.csv").is_file():
                generate_synthetic(args.data_root)
            if args.dataset == SCENES and not (args.data_root / LISTING).is_file():
                generate_scenes(args.data_root)
            listing = read_listing(args.dataset, args.data_root)
            folds = make_folds(listing, args.seed, args.nbr_splits, args.nbr_folds,
                               args.valid_ratio, args.test_ratio)
            written = write_folds(args.out, args.dataset, folds, args.seed, args.force)
        summaries = []
        for folder in written:
            split = int(folder.parent.name.removeprefix("split_"))
            loaded = load_fold(args.out, args.dataset, split, int(folder.name.removeprefix("fold_")))
            summaries.append(f"  {folder}: train {len(loaded.train)}, valid {len(loaded.valid)}, "
                             f"test {len(loaded.test)}")
    except (DataError, OSError) as error:
        print(f"create_folds: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} fold(s) of {args.dataset} under {args.out / args.dataset}")
    print("\n".join(summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
