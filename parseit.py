"""Configuration: one YAML file from config_yaml/ plus command-line overrides.

The schema below is the single definition of what a configuration holds: every key, its type,
its allowed values and a one-line description. `yaml-gen.py` writes the per-dataset files from it,
and `parse_config` checks a file and the command line against it before any work starts.

Precedence, lowest first: the YAML file; the YAML's `method_overrides[<al_type>]` (for example the
stage-1 learning rate of WSL); the command line.

Command line: `--key value` or `--key=value` for every key. Keys inside a section are written
`--section.key` (the separator is a dot), or by their bare name when that name is unique outside
`method_overrides` (so the paper's `--lr 0.1 --base_width 24` keep working). Booleans accept
true/false in any case and 1/0; `null` (or `None`) sets a nullable key to null; lists are written
`[a,b]` or `a,b`.

Options of the original that have no effect here (IGNORED_ORIGINAL_KEYS) are accepted on the command
line, in a YAML file (where the original's files held them) and in `method_overrides`, reported in one
line on stderr, and left out of the configuration.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml

import constants as C
from atomic_io import atomic_write_text

REPO_ROOT = Path(__file__).resolve().parent
CONFIG_DIR = REPO_ROOT / "config_yaml"
SEPARATOR = "."
OVERRIDES_SECTION = "method_overrides"
# The original wrote its optimiser keys as --optn0__<key>.
OPTIMIZER_PREFIX = "optn0__"
# Keys of the original that change nothing here (one network, one optimiser, one loss; the task and
# the classifier freeze follow from al_type), by their place in a YAML file: a YAML file may still
# hold them there, so that configuration files written before they were dropped keep loading.
IGNORED_ORIGINAL_PATHS = frozenset({
    "clustering", "share_masks", "use_dist_global_hist", "sigma_histc", "loss", "segloss_l", "segloss_pl",
    "scale_seg_u_sch", "seg_elbon", "subtask", "freeze_classifier",
    "model.name_model", "model.backbone", "optimizer.name_optimizer",
})
# Every spelling of a key that the original's generated scripts pass and that has no effect here:
# accepted so that its command lines run unchanged, reported, and ignored.
IGNORED_ORIGINAL_KEYS = frozenset({
    "optn0__lr_scheduler", "optn0__t_max", "optn0__beta1", "optn0__beta2", "optn0__eps_adam", "optn0__amsgrad",
    "dropoutnetssl", "resize_mask_opt_mask", "scale_seg_u_end", "scale_seg_u_sigma", "scale_seg_u_p_abstention",
    "num_workers", "pair_w_batch_size", "segloss",
    *IGNORED_ORIGINAL_PATHS, *(path.rpartition(".")[2] for path in IGNORED_ORIGINAL_PATHS),
    "optn0__name_optimizer",
})


# Seeds feed numpy's and torch's generators, which take 32-bit seeds at most in places.
MAX_SEED = 2**32 - 1


class ConfigError(ValueError):
    """A configuration problem; the message is one line naming the key, the value and the fix."""


@dataclass(frozen=True)
class Key:
    """One configuration key: its type (for null defaults too), allowed values and description."""

    type: type
    doc: str
    choices: tuple | None = None
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None


def _k(tp: type, doc: str, **kw: Any) -> Key:
    return Key(tp, doc, **kw)


# Section name -> {key -> Key}. The empty section name is the top level.
SCHEMA: dict[str, dict[str, Key]] = {
    "": {
        # Run
        "al_type": _k(str, "method: " + ", ".join(f"{m} (stage 1)" if m == C.WSL else m for m in C.METHODS),
                      choices=C.METHODS),
        "al_it": _k(int, "active-learning round run by this call (0-based)", minimum=0),
        "al_it_end": _k(int, "run rounds al_it..al_it_end in one process (null: al_it only)",
                        nullable=True, minimum=0),
        "max_al_its": _k(int, "number of rounds of the study", minimum=1),
        "exp_id": _k(str, "run id shared by every round of one (method, seed); null: <al_type>-seed_<MYSEED>",
                     nullable=True),
        "exp_root": _k(str, "folder that holds every run folder and the stage-1 checkpoints"),
        "debug_subfolder": _k(str, "optional sub-folder of exp_root grouping runs (the paper's spelling)"),
        "MYSEED": _k(int, "seed of the run: initial labelled set, selections, initialisation, augmentation",
                     minimum=0, maximum=MAX_SEED),
        "cudaid": _k(str, "CUDA device index used when device is cuda or auto"),
        "device": _k(str, "auto: CUDA when available, else CPU", choices=C.DEVICES),
        "deterministic": _k(bool, "deterministic algorithms: same seed and machine -> same selections and metrics"),
        "amp_bf16": _k(bool, "bf16 autocast for forward passes on CUDA (ignored on CPU)"),
        "channels_last": _k(bool, "channels_last memory format on CUDA (ignored on CPU)"),
        "progress": _k(bool, "progress bars on long work"),
        # Data
        "task": _k(str, "joint: class labels for all, masks from the oracle; classification: class labels from "
                    "the oracle; segmentation: K-class label maps from the oracle (keys of the other tasks are not "
                    "in the file)", choices=C.TASKS),
        "dataset": _k(str, "dataset name (reader and folds)", choices=C.DATASETS),
        "data_root": _k(str, "dataset root folder in its official layout (relative paths: from the repository)"),
        "fold_folder": _k(str, "folder holding folds/<dataset>/split_<s>/fold_<f>/ (relative: from the repository)"),
        "split": _k(int, "split index", minimum=0),
        "fold": _k(int, "fold index", minimum=0),
        "cache_dir": _k(str, "on-disk cache of decoded images (null: decode into memory each run)", nullable=True),
        "crop_size": _k(int, "training crop side before the ratio_scale_patch resize", minimum=8),
        "up_scale_small_dim_to": _k(int, "upscale images whose smaller side is below this (null: never)",
                                    nullable=True, minimum=8),
        "ratio_scale_patch": _k(float, "resize factor applied after cropping (train) and to the whole image (eval)",
                                minimum=0.05, maximum=4.0),
        "padding_ratio": _k(float, "padding added on each side, as a fraction of the side", minimum=0.0, maximum=0.5),
        "pad_eval": _k(bool, "pad evaluation images as training images are padded"),
        "frozen_cache_gb": _k(float, "stage 2: memory (GiB, on the device) for the frozen backbone's outputs on "
                              "evaluation images, computed once per theta0 and reused by every epoch and round (0: "
                              "recompute them each time)", minimum=0.0),
        "padding_mode": _k(str, "padding mode", choices=C.PADDING_MODES),
        "scale_algo": _k(str, "resampling filter of the one-off image rescaling", choices=C.SCALE_ALGOS),
        "hflip": _k(bool, "random horizontal flips (image and mask together)"),
        "vflip": _k(bool, "random vertical flips (image and mask together)"),
        # Active learning
        "p_init_samples": _k(float, "percent of the train set pixel-labelled at round 0 (count per class = int(p*N/100/#classes))",
                             minimum=0.0, maximum=100.0),
        "p_samples": _k(float, "percent of the train set the oracle labels per round (count = int(p*N/100))",
                        minimum=0.0, maximum=100.0),
        "knn": _k(int, "Label_prop: unlabelled neighbours walked before giving up on a labelled one", minimum=1),
        "knn_block_size": _k(int, "tile edge of the pairwise Jensen-Shannon computation: memory ~ 2*block^2*3*bins floats",
                             minimum=1),
        "protect_pl": _k(bool, "keep pseudo-labelled samples away from the oracle while enough others remain"),
        "nbr_bins_histc": _k(int, "colour-histogram bins", minimum=2),
        "min_histc": _k(float, "colour-histogram lower bound"),
        "max_histc": _k(float, "colour-histogram upper bound"),
        "resize_h_to_opt_mask": _k(int, "height the similarity features are resized to", minimum=8),
        "smooth_img": _k(bool, "Gaussian smoothing of the similarity features"),
        "smooth_img_ksz": _k(int, "Gaussian kernel size", minimum=1),
        "smooth_img_sigma": _k(float, "Gaussian sigma", minimum=0.0),
        "enhance_color": _k(bool, "saturation boost before the histograms"),
        "enhance_color_fact": _k(float, "saturation factor", minimum=0.0),
        "mcdropout_t": _k(int, "MC_Dropout, MC_entropy, MC_BALD: stochastic passes per image", minimum=0),
        "mc_score": _k(str, "MC_Dropout score: per-pixel variance or BALD (MC_entropy and MC_BALD are their own "
                       "al_type)", choices=C.MC_SCORES),
        "ensemble_size": _k(int, "Ensemble: members trained per round", minimum=2),
        "ensemble_score": _k(str, "Ensemble: entropy = predictive entropy, bald, or variance across members",
                             choices=C.ENSEMBLE_SCORES),
        "coreset_chunk": _k(int, "Coreset: candidates per block of distance computations", minimum=1),
        "hu_ridge": _k(float, "HU: added to the diagonal of each class covariance (sklearn reg_covar; > 0)",
                       minimum=0.0),
        "hu_pca_dim": _k(int, "HU: 0 = no PCA, else the PCA size, or the search step when hu_pca_search",
                         minimum=0),
        "hu_pca_search": _k(bool, "HU: greedy PCA-size search of strategies.md 9 in steps of hu_pca_dim"),
        "hu_pca_metric": _k(str, "HU: criterion of the PCA-size search (the size with the lowest value wins)",
                            choices=C.HU_PCA_METRICS),
        "hu_knn_k": _k(int, "HU_kNN: neighbours of the kNN classifier", minimum=1),
        "hu_knn_max_per_class": _k(int, "HU_kNN: labelled samples kept per class (random undersampling)",
                                   minimum=1),
        "annotation_unit": _k(str, "what the oracle annotates: whole images, or superpixel regions (partial masks)",
                              choices=C.ANNOTATION_UNITS),
        "regions_per_image": _k(int, "region unit: superpixels per image (computed once per dataset and cached)",
                                minimum=1),
        "superpixel_method": _k(str, "region unit: SLIC, or watershed on the Sobel gradient (strategies.md 10)",
                                choices=C.SUPERPIXEL_METHODS),
        "region_budget": _k(str, "region unit: each round reveals as many regions (regions_per_image x the images "
                            "image-level AL picks: p_samples, or seg_n_new) or as many pixels as image-level AL would", choices=C.REGION_BUDGET_UNITS),
        "oracle": _k(str, "who answers the requests: the dataset's masks (simulated), or a person through files "
                     "(each round writes round_<r>/to_annotate/ and the next one reads the answers; joint and "
                     "segmentation tasks)",
                     choices=C.ORACLES),
        "oracle_answers": _k(str, "oracle files: a folder of <id>.png masks (label maps for segmentation) or a "
                             "Label Studio JSON export with the answers to the request of the call's first round (empty: the request's answers/ folder)"),
        "ll4al_width": _k(int, "LL4AL: width of the loss-prediction module's per-level layers", minimum=1),
        "ll4al_margin": _k(float, "LL4AL: margin of the pairwise ranking loss (> 0)", minimum=0.0),
        "ll4al_weight": _k(float, "LL4AL: weight of the ranking loss in the training loss (0: the module "
                           "learns nothing from the head)", minimum=0.0),
        "ll4al_detach_epoch": _k(int, "LL4AL: from this epoch on, the head's maps enter the module detached "
                                 "(<= max_epochs)", minimum=0),
        "ll4al_subset": _k(int, "LL4AL: candidates scored per round, drawn at random from the pool", minimum=1),
        "dal_sub_batches": _k(int, "DAL: sub-batches of the round's pick, the discriminator retrained between them",
                              minimum=1),
        "dal_stop_accuracy": _k(float, "DAL: stop training the discriminator above this training accuracy",
                                minimum=0.5, maximum=1.0),
        "dal_max_epochs": _k(int, "DAL: most epochs of one discriminator training", minimum=1),
        "dal_lr": _k(float, "DAL: Adam learning rate of the discriminator (> 0)", minimum=0.0),
        "dal_batch_size": _k(int, "DAL: discriminator batch size", minimum=1),
        "dal_width": _k(int, "DAL: hidden width of the 3-layer MLP (20 when the features have < 30 values)",
                        minimum=1),
        "dal_pool_ratio": _k(int, "DAL: each sub-batch scores min(dal_pool_ratio x |L|, |U|) candidates",
                             minimum=1),
        # Loss
        "scale_cl": _k(float, "weight of the classification term", minimum=0.0),
        "scale_seg": _k(float, "weight of the pixel-labelled segmentation term", minimum=0.0),
        "scale_seg_u": _k(float, "lambda: weight of the pseudo-labelled segmentation term", minimum=0.0),
        "weight_pseudo_loss": _k(bool, "multiply the pseudo-labelled term by 1/|P|"),
        "seg_loss_normalisation": _k(str, "sample: (sum_L + lambda*sum_PL)/n_masked; group: mean_L + lambda*mean_PL",
                                     choices=C.SEG_LOSS_NORMS),
        # Training
        "batch_size": _k(int, "training batch size", minimum=1),
        "valid_batch_size": _k(int, "evaluation batch size (images of one size are batched together)", minimum=1),
        "max_epochs": _k(int, "training epochs per cycle", minimum=1),
        "seg_threshold": _k(float, "foreground threshold when none is estimated", minimum=0.0, maximum=1.0),
        "estimate_seg_thres": _k(bool, "estimate the threshold (best mean IoU on validation) for final metrics"),
        "estimate_pseg_thres": _k(bool, "estimate the threshold used to cut pseudo-masks"),
        "path_pre_trained": _k(str, "stage-1 checkpoint (theta0); null: the WSL run of this dataset/split/fold/seed",
                               nullable=True),
        "pre_trained": _k(bool, "ImageNet weights for the backbone"),
        "imagenet_weights_path": _k(str, "local file of torchvision's resnet18 ImageNet weights (null: torch cache)",
                                    nullable=True),
    },
    "model": {
        "num_classes": _k(int, "number of classes (checked against the fold's encoding)", minimum=1),
        "modalities": _k(int, "WILDCAT maps per class", minimum=1),
        "kmax": _k(float, "WILDCAT fraction of top activations", minimum=0.0, maximum=1.0),
        "kmin": _k(float, "WILDCAT fraction of bottom activations", minimum=0.0, maximum=1.0),
        "alpha": _k(float, "WILDCAT weight of the bottom activations", minimum=0.0),
        "dropout": _k(float, "WILDCAT dropout on sorted activations", minimum=0.0, maximum=0.99),
        "base_width": _k(int, "segmentation head base width", minimum=1),
        "leak": _k(int, "segmentation head bridge width", minimum=1),
        "full_res_width": _k(int, "width of the head's full-resolution branch (64 in the paper)", minimum=1),
        "backbone_dropout": _k(float, "dropout on backbone outputs and head blocks (MC_Dropout, MC_entropy, "
                               "MC_BALD)",
                               minimum=0.0, maximum=0.99),
    },
    "classification": {
        "model": _k(str, "torchvision classification model by name (resnet18, resnet34, squeezenet1_1, ...)"),
        "pretrained": _k(bool, "start from torchvision's ImageNet weights (read from weights_dir, never downloaded)"),
        "weights_dir": _k(str, "folder of torchvision's weight files (null: torch's hub cache, "
                          "~/.cache/torch/hub/checkpoints)", nullable=True),
        "head_dropout": _k(float, "dropout before the classification layer (MC strategies need > 0)",
                      minimum=0.0, maximum=0.99),
        "solver": _k(str, "sgd (the optimizer section's momentum, Nesterov, dampening) or adam (lr and weight_decay "
                     "of the optimizer section; 002's choice)", choices=("sgd", "adam")),
        "n_start": _k(int, "images per class labelled at random before round 0", minimum=1),
        "n_new": _k(int, "images the oracle labels per round", minimum=1),
        "patience": _k(int, "stop the study after this many rounds without a better validation accuracy "
                       "(0: never)", minimum=0),
        "data_aug": _k(bool, "random shifts (and flips for natural images) of the training images"),
        "warm_start": _k(bool, "start each round from the previous round's weights instead of a fresh model"),
        "init_sampling_seed": _k(int, "seed of the n_start draw (null: MYSEED)", nullable=True, minimum=0,
                                 maximum=MAX_SEED),
    },
    "segmentation": {
        "seg_model": _k(str, "unet (a small U-Net for CPU runs) or a torchvision segmentation model by name "
                        "(deeplabv3_resnet50, deeplabv3_mobilenet_v3_large, fcn_resnet50, lraspp_mobilenet_v3_large, ...)"),
        "seg_width": _k(int, "unet: base width (widths w, 2w, 4w)", minimum=1),
        "seg_dropout": _k(float, "unet: dropout before the per-pixel classifier (MC strategies need > 0)",
                          minimum=0.0, maximum=0.99),
        "seg_weights_path": _k(str, "torchvision models: a local state dict to start from (never downloaded; "
                                "null: random weights)", nullable=True),
        "image_height": _k(int, "every image and label map is resized to this height (labels: nearest)", minimum=16),
        "image_width": _k(int, "every image and label map is resized to this width", minimum=16),
        "seg_hflip": _k(bool, "random horizontal flips of the training images and their label maps"),
        "seg_n_start": _k(int, "images labelled at random before round 0", minimum=1),
        "seg_n_new": _k(int, "images the oracle labels per round (plain top-k: there is no image label)", minimum=1),
    },
    "optimizer": {
        "lr": _k(float, "learning rate", minimum=0.0),
        "momentum": _k(float, "SGD momentum", minimum=0.0),
        "nesterov": _k(bool, "Nesterov momentum"),
        "dampening": _k(float, "SGD dampening", minimum=0.0),
        "weight_decay": _k(float, "weight decay", minimum=0.0),
        "name_lr_scheduler": _k(str, "mystep: lr = max(lr*gamma^floor(epoch/step_size), min_lr)",
                                choices=C.SCHEDULERS),
        "step_size": _k(int, "mystep period in epochs", minimum=1),
        "gamma": _k(float, "mystep decay", minimum=0.0),
        "min_lr": _k(float, "mystep floor", minimum=0.0),
        "grad_clip_norm": _k(float, "largest L2 norm of one step's gradient, longer ones are scaled down to it "
                                    "(0: no clipping)", minimum=0.0),
    },
}


def _leaf_index() -> dict[str, list[str]]:
    """Bare key name -> dotted paths that end with it (outside method_overrides)."""
    index: dict[str, list[str]] = {}
    for section, keys in SCHEMA.items():
        for name in keys:
            index.setdefault(name, []).append(f"{section}{SEPARATOR}{name}" if section else name)
    return index


LEAVES = _leaf_index()

# Keys both tasks use. Every other key of the top level and of `model` belongs to the joint task, and
# the `classification` section to the classification task: a file holds its task's keys only.
SHARED_KEYS = frozenset({
    "al_type", "al_it", "al_it_end", "max_al_its", "exp_id", "exp_root", "debug_subfolder", "MYSEED", "cudaid",
    "device", "deterministic", "amp_bf16", "channels_last", "progress", "task", "dataset", "data_root", "oracle",
    "fold_folder", "split", "fold", "mcdropout_t", "mc_score", "ensemble_size", "ensemble_score", "coreset_chunk",
    "hu_ridge", "hu_pca_dim", "hu_pca_search", "hu_pca_metric", "hu_knn_k", "hu_knn_max_per_class",
    "ll4al_width", "ll4al_margin", "ll4al_weight", "ll4al_detach_epoch", "ll4al_subset", "dal_sub_batches",
    "dal_stop_accuracy", "dal_max_epochs", "dal_lr", "dal_batch_size", "dal_width", "dal_pool_ratio",
    "batch_size", "valid_batch_size", "max_epochs", "model.num_classes",
    *(f"optimizer{SEPARATOR}{name}" for name in SCHEMA["optimizer"]),
})


# Sections that belong to one task; every other non-shared key is the joint task's.
TASK_SECTIONS = {"classification": C.TASK_CLASSIFICATION, "segmentation": C.TASK_SEGMENTATION}


# Shared keys of the strategies the segmentation task does not run (HU, LL4AL, DAL).
NOT_SEGMENTATION_KEYS = frozenset(key for key in SHARED_KEYS if key.startswith(("hu_", "ll4al_", "dal_")))


# Keys the tasks with pixel labels share: region-level annotation and a person's answers.
PIXEL_LABEL_KEYS = frozenset({"annotation_unit", "regions_per_image", "superpixel_method", "region_budget",
                              "oracle_answers"})


def key_tasks(path: str) -> tuple[str, ...]:
    """The tasks whose configurations hold a dotted key."""
    if path in PIXEL_LABEL_KEYS:
        return C.TASK_JOINT, C.TASK_SEGMENTATION
    if path in SHARED_KEYS:
        return tuple(t for t in C.TASKS if not (t == C.TASK_SEGMENTATION and path in NOT_SEGMENTATION_KEYS))
    return (TASK_SECTIONS.get(path.partition(SEPARATOR)[0] if SEPARATOR in path else "", C.TASK_JOINT),)


def accepts(task: str, path: str) -> bool:
    return task in key_tasks(path)


def key_task(path: str) -> str | None:
    """The task(s) a dotted key belongs to, in words; None for the keys every task uses."""
    tasks = key_tasks(path)
    return None if len(tasks) == len(C.TASKS) else " and ".join(tasks)


def _section_task(section: str) -> str:
    return key_task(f"{section}{SEPARATOR}{next(iter(SCHEMA[section]))}") or C.TASK_JOINT


def key_spec(path: str) -> Key:
    section, _, name = path.rpartition(SEPARATOR)
    return SCHEMA[section][name]


def resolve_key(name: str) -> str:
    """Dotted path of a command-line or override key name; ConfigError if unknown or ambiguous."""
    given = name
    if name.startswith(OPTIMIZER_PREFIX):
        name = "optimizer" + SEPARATOR + name[len(OPTIMIZER_PREFIX):]
    if SEPARATOR in name:
        section, _, leaf = name.rpartition(SEPARATOR)
        if section in SCHEMA and leaf in SCHEMA[section]:
            return name
    elif name in LEAVES:
        paths = LEAVES[name]
        if len(paths) > 1:
            raise ConfigError(f"key '{name}' is ambiguous: write one of {', '.join('--' + p for p in paths)}")
        return paths[0]
    raise ConfigError(f"unknown key '{given}': see 'python main.py --help' for the list of keys")


def _describe(spec: Key) -> str:
    if spec.choices is not None:
        allowed = "one of " + ", ".join(str(c) for c in spec.choices)
    else:
        allowed = {bool: "true/false (or 1/0)", int: "an integer", float: "a number", str: "a string",
                   list: "a list"}[spec.type]
    if spec.minimum is not None or spec.maximum is not None:
        lo = "(-inf" if spec.minimum is None else f"[{spec.minimum:g}"
        hi = "inf)" if spec.maximum is None else f"{spec.maximum:g}]"
        allowed += f" in {lo}, {hi}"
    if spec.nullable:
        allowed += ", or null"
    return allowed


def coerce(path: str, value: Any, from_text: bool) -> Any:
    """Check (and for command-line text, convert) one value against its key's spec."""
    spec = key_spec(path)

    def bad() -> NoReturn:
        raise ConfigError(f"bad value {value!r} for key '{path}': expected {_describe(spec)}")

    is_choice = spec.choices is not None and value in spec.choices
    if value is None or (from_text and isinstance(value, str) and value.lower() in ("null", "none")
                         and not is_choice):
        if spec.nullable:
            return None
        bad()
    if spec.type is bool:
        if isinstance(value, bool):
            out: Any = value
        elif from_text and isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
            out = value.lower() in ("true", "1")
        else:
            bad()
    elif spec.type is int:
        if isinstance(value, bool):
            bad()
        if isinstance(value, int):
            out = value
        elif from_text and isinstance(value, str):
            try:
                out = int(value)
            except ValueError:
                bad()
        else:
            bad()
    elif spec.type is float:
        if isinstance(value, bool):
            bad()
        if isinstance(value, (int, float)):
            out = float(value)
        elif from_text and isinstance(value, str):
            try:
                out = float(value)
            except ValueError:
                bad()
        else:
            bad()
    elif spec.type is list:
        if isinstance(value, list):
            out = value
        elif from_text and isinstance(value, str):
            text = value.strip()
            out = yaml.safe_load(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
            if not isinstance(out, list):
                bad()
        else:
            bad()
    else:
        if isinstance(value, str):
            out = value
        elif from_text:
            out = str(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out = str(value)  # e.g. cudaid: 0 in a hand-written YAML
        else:
            bad()
    if spec.choices is not None and out not in spec.choices:
        bad()
    if isinstance(out, float) and not math.isfinite(out):
        bad()
    if isinstance(out, (int, float)) and not isinstance(out, bool) and not _within(out, spec):
        bad()
    return out


def _within(value: float, spec: Key) -> bool:
    return ((spec.minimum is None or value >= spec.minimum)
            and (spec.maximum is None or value <= spec.maximum))


class Config(Mapping):
    """Immutable, attribute-access view of a resolved configuration (sections are Configs too)."""

    def __init__(self, data: Mapping[str, Any]):
        object.__setattr__(self, "_data", {k: Config(v) if isinstance(v, Mapping) else v
                                           for k, v in data.items()})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, key: str) -> Any:
        try:
            return self._data[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("Config is immutable; derive a new one with .replace(...)")

    def to_dict(self) -> dict[str, Any]:
        return {k: v.to_dict() if isinstance(v, Config) else v for k, v in self._data.items()}

    def replace(self, **changes: Any) -> Config:
        """A copy with top-level or dotted keys changed (each value checked against the schema)."""
        data = self.to_dict()
        for name, value in changes.items():
            path = resolve_key(name.replace("__", SEPARATOR))
            _set_path(data, path, coerce(path, value, from_text=False))
        return Config(data)

    def __repr__(self) -> str:
        return f"Config({self.to_dict()!r})"


def _set_path(data: dict, path: str, value: Any) -> None:
    section, _, name = path.rpartition(SEPARATOR)
    (data[section] if section else data)[name] = value


def _get_path(data: Mapping, path: str) -> Any:
    section, _, name = path.rpartition(SEPARATOR)
    return (data[section] if section else data)[name]


def yaml_path(name: str, config_dir: Path = CONFIG_DIR) -> Path:
    """config_yaml/<name> (with or without .yaml), or an explicit path to a YAML file."""
    candidate = Path(name)
    alias = C.DATASET_ALIASES.get(candidate.stem)
    if alias is not None and candidate.parent == Path("."):
        candidate = Path(alias)
    if candidate.suffix not in (".yaml", ".yml"):
        candidate = candidate.with_suffix(".yaml")
    if candidate.parent == Path(".") and not candidate.exists():
        candidate = config_dir / candidate.name
    if not candidate.is_file():
        available = ", ".join(sorted(p.stem for p in config_dir.glob("*.yaml")))
        raise ConfigError(f"config file '{name}' not found: pass --yaml with one of: {available}")
    return candidate


def _check_file(raw: Any, source: Path) -> tuple[dict[str, Any], list[str]]:
    """Validate a YAML file's content: exactly the schema's keys, each of the right type.

    Returns the values and the options of the original the file holds (dotted paths, in file order),
    which are left out of the values.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of keys; regenerate it with 'python yaml-gen.py'")
    task = raw.get("task")
    task = C.TASK_ALIASES.get(task, task) if isinstance(task, str) else task
    if task is not None:
        raw = {**raw, "task": coerce("task", task, from_text=False)}
    data: dict[str, Any] = {}
    ignored: list[str] = []
    for section, keys in SCHEMA.items():
        block = raw if not section else raw.get(section)
        wanted = [name for name in keys if accepts(task or C.TASK_JOINT, f"{section}{SEPARATOR}{name}" if section
                                                   else name)]
        if not wanted:
            if block is not None:
                raise ConfigError(f"{source}: section '{section}' belongs to the {_section_task(section)} "
                                  f"task and this file's task is {task or C.TASK_JOINT}: remove it")
            continue
        if not isinstance(block, dict):
            raise ConfigError(f"{source}: section '{section}' is missing; regenerate it with 'python yaml-gen.py'")
        out = data if not section else data.setdefault(section, {})
        for name in keys:
            path = f"{section}{SEPARATOR}{name}" if section else name
            if name not in wanted:
                if name in block:
                    raise ConfigError(f"{source}: key '{path}' belongs to the {key_task(path)} task and this file's "
                                      f"task is {task}: remove it or regenerate the file with 'python yaml-gen.py'")
                continue
            if name not in block:
                raise ConfigError(f"{source}: key '{path}' is missing; regenerate it with 'python yaml-gen.py'")
            out[name] = coerce(path, block[name], from_text=False)
        prefix = f"{section}{SEPARATOR}" if section else ""
        ignored += [prefix + name for name in block if prefix + name in IGNORED_ORIGINAL_PATHS]
        extra = (set(block) - set(keys) - (set(SCHEMA) | {OVERRIDES_SECTION} if not section else set())
                 - {name for name in block if prefix + name in IGNORED_ORIGINAL_PATHS})
        if extra:
            raise ConfigError(f"{source}: unknown key '{min(extra)}'{' in ' + section if section else ''}; "
                              "remove it or regenerate the file with 'python yaml-gen.py'")
    overrides = raw.get(OVERRIDES_SECTION) or {}
    if not isinstance(overrides, dict):
        raise ConfigError(f"{source}: '{OVERRIDES_SECTION}' must map a method name to {{key: value}}")
    data[OVERRIDES_SECTION] = {}
    for method, changes in overrides.items():
        if method not in C.METHODS:
            raise ConfigError(f"{source}: {OVERRIDES_SECTION} names unknown method '{method}'; "
                              f"use one of {', '.join(C.METHODS)}")
        if not isinstance(changes, dict):
            raise ConfigError(f"{source}: {OVERRIDES_SECTION}.{method} must be a mapping of key: value")
        ignored += [f"{OVERRIDES_SECTION}.{method}.{name}" for name in changes if name in IGNORED_ORIGINAL_KEYS]
        kept = {name: v for name, v in changes.items() if name not in IGNORED_ORIGINAL_KEYS}
        for name in kept:
            _check_task_key(resolve_key(name), data["task"], f"{source}: {OVERRIDES_SECTION}.{method}.{name}",
                            "remove it")
        data[OVERRIDES_SECTION][method] = {name: coerce(resolve_key(name), v, from_text=False)
                                           for name, v in kept.items()}
    return data, ignored


def _check_task_key(path: str, task: str, where: str, fix: str) -> None:
    owner = key_task(path)
    if not accepts(task, path):
        raise ConfigError(f"{where} applies to the {owner} task only and the configuration's task is {task}: {fix}")


def split_command_line(argv: Sequence[str]) -> tuple[str | None, dict[str, str]]:
    """(--yaml value, {key: raw text}) from `--key value` / `--key=value` tokens."""
    yaml_name: str | None = None
    pairs: dict[str, str] = {}
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("--") or token == "--":
            raise ConfigError(f"unexpected argument '{token}': write options as --key value")
        name, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 >= len(argv) or (argv[i + 1].startswith("--") and not _is_number(argv[i + 1])):
                raise ConfigError(f"option '--{name}' has no value: write --{name} VALUE")
            value = argv[i + 1]
            i += 1
        i += 1
        if name == "yaml":
            yaml_name = value
        else:
            if name in pairs:
                pairs.pop(name)  # the last occurrence wins, as with argparse
            pairs[name] = value
    return yaml_name, pairs


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _derive_and_check(data: dict[str, Any]) -> None:
    """Keys derived from the method, and rules that involve several keys."""
    method = data["al_type"]
    if data["al_it"] >= data["max_al_its"]:
        raise ConfigError(f"al_it {data['al_it']} is past the study's last round {data['max_al_its'] - 1}: "
                          "lower --al_it or raise --max_al_its")
    end = data["al_it_end"]
    if end is not None and not data["al_it"] <= end < data["max_al_its"]:
        raise ConfigError(f"al_it_end {end} must lie in [al_it={data['al_it']}, max_al_its-1="
                          f"{data['max_al_its'] - 1}]")
    if method in C.SINGLE_ROUND_METHODS and (data["al_it"] != 0 or end not in (None, 0)):
        raise ConfigError(f"{method} has a single round, got al_it {data['al_it']} and al_it_end {end}: "
                          "use --al_it 0 and no al_it_end")
    if method in C.MC_METHODS and data["mcdropout_t"] < 1:
        raise ConfigError(f"{method} needs at least one stochastic pass, got mcdropout_t {data['mcdropout_t']}: "
                          "pass --mcdropout_t 50")
    if accepts(data["task"], "hu_ridge"):
        _check_strategy_keys(data)
    if data["exp_id"] is not None and not _safe_name(data["exp_id"]):
        raise ConfigError(f"exp_id '{data['exp_id']}' may hold only letters, digits and . _ - : choose another")
    if data["debug_subfolder"] and not all(_safe_name(part) for part in data["debug_subfolder"].split("/")):
        raise ConfigError(f"debug_subfolder '{data['debug_subfolder']}' must be a relative path of names made of "
                          "letters, digits and . _ - (no '..', no leading '/'): choose another")
    {C.TASK_CLASSIFICATION: _check_classification, C.TASK_SEGMENTATION: _check_segmentation}.get(
        data["task"], _check_joint)(data)


def _check_strategy_keys(data: dict[str, Any]) -> None:
    """The keys of HU, LL4AL and DAL (tasks that run them)."""
    method = data["al_type"]
    if data["hu_ridge"] <= 0:
        raise ConfigError(f"hu_ridge must be > 0 (a singular class covariance cannot be inverted), got "
                          f"{data['hu_ridge']:g}: pass --hu_ridge 1e-6")
    if data["ll4al_margin"] <= 0:
        raise ConfigError(f"ll4al_margin must be > 0, got {data['ll4al_margin']:g}: pass --ll4al_margin 1")
    if data["dal_lr"] <= 0:
        raise ConfigError(f"dal_lr must be > 0, got {data['dal_lr']:g}: pass --dal_lr 2e-4")
    if method == C.LL4AL and data["ll4al_detach_epoch"] > data["max_epochs"]:
        raise ConfigError(f"ll4al_detach_epoch {data['ll4al_detach_epoch']} is past the {data['max_epochs']} "
                          f"training epochs: pass --ll4al_detach_epoch {data['max_epochs'] * 3 // 5} (60 %, as the "
                          "paper's 120 of 200) or at most max_epochs")
    if data["hu_pca_search"] and data["hu_pca_dim"] < 1:
        raise ConfigError(f"hu_pca_search searches the PCA size in steps of hu_pca_dim, got hu_pca_dim "
                          f"{data['hu_pca_dim']}: pass --hu_pca_dim 1")


def _check_other_task(data: dict[str, Any], methods: Sequence[str], datasets: Sequence[str]) -> None:
    """What the classification and segmentation tasks share: their methods and datasets."""
    method, task = data["al_type"], data["task"]
    if method not in methods:
        why = "needs image-level class labels and binary masks, so it runs on the joint task only" \
            if method in (C.WSL, C.LABEL_PROP) else f"does not run on the {task} task"
        raise ConfigError(f"{method} {why}: use one of {', '.join(methods)} with the {task} task")
    if data["dataset"] not in datasets:
        raise ConfigError(f"dataset {data['dataset']} has no {task} labels: use one of {', '.join(datasets)} "
                          f"(or another --yaml)")


def _check_pixel_labels(data: dict[str, Any]) -> None:
    """Region-level annotation and a person's answers, for the tasks with pixel labels."""
    method = data["al_type"]
    if data["oracle_answers"] and data["oracle"] != C.ORACLE_FILES:
        raise ConfigError(f"oracle_answers {data['oracle_answers']!r} is read only when a person is the oracle: "
                          "add --oracle files, or drop --oracle_answers")
    if (data["annotation_unit"] == C.UNIT_REGION and method not in C.PIXEL_METHODS
            and method not in C.SINGLE_ROUND_METHODS):
        raise ConfigError(f"{method} scores whole images, so it cannot pick regions (annotation_unit region): "
                          f"use --annotation_unit image, or one of {', '.join(C.PIXEL_METHODS)}")


def _check_segmentation(data: dict[str, Any]) -> None:
    _check_other_task(data, C.SEGMENTATION_METHODS, C.SEGMENTATION_DATASETS)
    _check_pixel_labels(data)
    s = data["segmentation"]
    if data["al_type"] in C.MC_METHODS and s["seg_dropout"] <= 0:
        raise ConfigError(f"{data['al_type']} samples dropout masks but segmentation.seg_dropout is "
                          f"{s['seg_dropout']:g}: pass --seg_dropout 0.2")


def _check_classification(data: dict[str, Any]) -> None:
    method = data["al_type"]
    _check_other_task(data, C.CLASSIFICATION_METHODS, C.CLASSIFICATION_DATASETS)
    if data["oracle"] != C.ORACLE_SIMULATED:
        raise ConfigError(f"the classification task has no person oracle yet: pass --oracle {C.ORACLE_SIMULATED}")
    if method in C.MC_METHODS and data["classification"]["head_dropout"] <= 0:
        raise ConfigError(f"{method} samples dropout masks but classification.head_dropout is "
                          f"{data['classification']['head_dropout']:g}: pass --head_dropout 0.3")


def _check_joint(data: dict[str, Any]) -> None:
    method = data["al_type"]
    if data["dataset"] in (*C.CLASSIFICATION_DATASETS, *C.SEGMENTATION_DATASETS):
        raise ConfigError(f"dataset {data['dataset']} has no binary masks for the joint task: pass --yaml with a "
                          "configuration of its task")
    if method == C.WSL and data["estimate_seg_thres"]:
        raise ConfigError("WSL masks use the fixed threshold seg_threshold: set --estimate_seg_thres false")
    if method in C.MC_METHODS and data["model"]["backbone_dropout"] <= 0:
        raise ConfigError(f"{method} samples dropout masks but model.backbone_dropout is "
                          f"{data['model']['backbone_dropout']:g}: pass --backbone_dropout 0.2")
    _check_pixel_labels(data)
    if data["min_histc"] >= data["max_histc"]:
        raise ConfigError(f"min_histc {data['min_histc']} must be below max_histc {data['max_histc']}")


def _safe_name(text: str) -> bool:
    return bool(text) and all(ch.isalnum() or ch in "._-" for ch in text) and not text.startswith(".")


def parse_config(argv: Sequence[str] | None = None, config_dir: Path = CONFIG_DIR) -> Config:
    """Resolve a configuration from `--yaml NAME` and `--key value` overrides (ConfigError on any problem)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    yaml_name, pairs = split_command_line(argv)
    if yaml_name is None:
        raise ConfigError("no configuration given: pass --yaml <dataset>.yaml (files in config_yaml/)")
    source = yaml_path(yaml_name, config_dir)
    try:
        raw = yaml.safe_load(source.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML ({str(exc).splitlines()[0]}): fix or regenerate it") from None
    data, in_file = _check_file(raw, source)
    overrides = data.pop(OVERRIDES_SECTION)

    on_cli = sorted(name for name in pairs if name in IGNORED_ORIGINAL_KEYS)
    groups = [f"{', '.join(names)} ({where})" for names, where in ((on_cli, "command line"), (in_file, source.name))
              if names]
    if groups:
        print(f"note: ignoring options of the original that have no effect here: {'; '.join(groups)}",
              file=sys.stderr)
    if "dataset" in pairs:
        pairs["dataset"] = C.DATASET_ALIASES.get(pairs["dataset"], pairs["dataset"])
    if "task" in pairs:
        pairs["task"] = C.TASK_ALIASES.get(pairs["task"], pairs["task"])
    cli = {resolve_key(name): coerce(resolve_key(name), value, from_text=True) for name, value in pairs.items()
           if name not in IGNORED_ORIGINAL_KEYS}
    if cli.get("task", data["task"]) != data["task"]:
        raise ConfigError(f"{source.name} is a {data['task']} configuration: the task comes with the file, so pass "
                          f"--yaml with a {cli['task']} configuration instead of --task {cli['task']}")
    for path in cli:
        _check_task_key(path, data["task"], f"--{path}", f"drop it, or pass --yaml with a {key_task(path)} "
                        "configuration")
    method = cli.get("al_type", data["al_type"])
    for name, value in overrides.get(method, {}).items():
        _set_path(data, resolve_key(name), value)
    for path, value in cli.items():
        _set_path(data, path, value)
    data[OVERRIDES_SECTION] = overrides
    _derive_and_check(data)
    data["yaml"] = source.name
    return Config(data)


def summary(cfg: Config) -> str:
    """A few lines naming what a run does, printed at start."""
    o = cfg.optimizer
    head = (f"{cfg.al_type} on {cfg.dataset} (split {cfg.split}, fold {cfg.fold}) seed {cfg.MYSEED}, "
            f"round {cfg.al_it}{'' if cfg.al_it_end is None else f'..{cfg.al_it_end}'} of {cfg.max_al_its}\n")
    solver = cfg.classification.solver if cfg.task == C.TASK_CLASSIFICATION else "sgd"
    optimiser = f"{solver.upper() if solver == 'sgd' else 'Adam'} lr {o.lr:g} ({o.name_lr_scheduler} {o.step_size}/{o.gamma:g})"
    tail = (f"batch {cfg.batch_size} | epochs {cfg.max_epochs} | {optimiser}\n"
            f"  device {cfg.device} | deterministic {cfg.deterministic}")
    if cfg.task == C.TASK_CLASSIFICATION:
        k = cfg.classification
        return (head + f"  classification | {k.model}{' ImageNet' if k.pretrained else ''} "
                f"dropout {k.head_dropout:g} | n_start {k.n_start}/class n_new {k.n_new} patience {k.patience} | "
                + tail)
    if cfg.task == C.TASK_SEGMENTATION:
        s = cfg.segmentation
        return (head + f"  segmentation | {s.seg_model} ({cfg.model.num_classes} classes) dropout {s.seg_dropout:g} | "
                f"{s.image_height}x{s.image_width} px | n_start {s.seg_n_start} n_new {s.seg_n_new} | " + tail)
    m = cfg.model
    return (head + f"  data {cfg.data_root} | crop {cfg.crop_size} x{cfg.ratio_scale_patch} | batch {cfg.batch_size} | "
            f"epochs {cfg.max_epochs} | {optimiser}\n"
            f"  model ResNet-18 hybrid bw {m.base_width} leak {m.leak} dropout {m.backbone_dropout:g} | "
            f"lambda {cfg.scale_seg_u:g} knn {cfg.knn} | device {cfg.device} | deterministic {cfg.deterministic}")


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any],
                       ignore: Sequence[str] = ()) -> list[str]:
    """Dotted schema keys whose values differ between a saved and the current resolved configuration.

    A key the saved configuration lacks is not a difference: the run was started by a version that
    predates the key. A key the current configuration lacks is one. Keys outside the schema (such as
    options of the original that earlier versions kept) are not compared.
    """
    out = []
    for section, keys in SCHEMA.items():
        for name in keys:
            path = f"{section}{SEPARATOR}{name}" if section else name
            if path in ignore:
                continue
            try:
                a = _get_path(saved, path)
            except (KeyError, TypeError):
                continue
            try:
                b = _get_path(current, path)
            except (KeyError, TypeError):
                out.append(path)
                continue
            if a != b:
                out.append(path)
    return out


def resolve_path(path: str) -> Path:
    """Relative paths in a configuration are taken from the repository root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else REPO_ROOT / p


def save_config(cfg: Config, path: Path) -> None:
    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def help_text() -> str:
    lines = ["usage: python main.py --yaml <dataset>.yaml [--key value ...]", "",
             "keys (section keys also as --section.key):"]
    for section, keys in SCHEMA.items():
        if section:
            lines.append(f"[{section}]")
        for name, spec in keys.items():
            lines.append(f"  --{name:<24} {spec.doc} ({_describe(spec)})")
    lines += ["", "accepted and ignored (options of the original with no effect here): "
              + ", ".join(f"--{name}" for name in sorted(IGNORED_ORIGINAL_KEYS))]
    return "\n".join(lines)


def print_help() -> None:
    try:
        print(help_text())
    except BrokenPipeError:  # e.g. piped into head
        pass


@contextmanager
def exit_on_error(*expected: type[BaseException]) -> Iterator[None]:
    """Turn the user-facing errors of an entry point into one line on stderr and exit code 2.

    Only the error classes named (plus ConfigError) are caught, so programming errors keep
    their traceback.
    """
    try:
        yield
    except (ConfigError, *expected) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        sys.exit(2)


def _one_line(exc: BaseException) -> str:
    """The message of a user-facing error; for a file-system error, the path and what to check."""
    if isinstance(exc, OSError) and not isinstance(exc, ConfigError):
        where = f" {exc.filename}" if exc.filename else ""
        return (f"cannot use{where}: {exc.strerror or exc}: check that the path (exp_root, cache_dir, data_root) "
                "is a folder this user can write in")
    return " ".join(str(exc).split())
