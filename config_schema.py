"""The configuration schema: every key, its type, allowed values and description, and which task's
configuration holds it. parseit.py parses and checks files and command lines against it; yaml-gen.py
writes the per-dataset files from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import constants as C

SEPARATOR = "."
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
        "redo_round": _k(int, "run finished round r again, e.g. with corrected answers (r must be al_it): "
                         "round r and every later round are first moved to <run>/superseded/<time>/, nothing is "
                         "deleted (null: a finished round is skipped)", nullable=True, minimum=0),
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
        "keep_models": _k(str, "round models kept (round_<r>/model.pt, for predict.py): every round's (all), the "
                          "last finished round's (last), or none once the next round has read it (none)",
                          choices=C.KEEP_MODELS),
        "tensorboard": _k(bool, "training logs also as TensorBoard event files in round_<r>/tensorboard/ (false, or "
                          "the package missing: training_log.csv only)"),
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
                     "(each round writes round_<r>/to_annotate/ and the next one reads the answers) or through a "
                     "Label Studio server (label_studio: the requests are imported and the answers exported through "
                     "its API); joint and segmentation tasks",
                     choices=C.ORACLES),
        "oracle_answers": _k(str, "oracle files: a folder of <id>.png masks (label maps for segmentation) or a "
                             "Label Studio JSON export with the answers to the request of the call's first round (empty: the request's answers/ folder)"),
        "label_studio_url": _k(str, "oracle label_studio: address of the Label Studio server (its local-files "
                               "document root must be exp_root)"),
        "label_studio_token_file": _k(str, "oracle label_studio: a file holding the API token (personal access "
                                      "token or legacy token); empty: the environment variable LABEL_STUDIO_API_KEY. "
                                      "The token is never saved"),
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
        "wsl_method": _k(str, "stage 1 (WSL) localiser: WILDCAT's class maps, or min-max entropy with recursive erasing "
                         "(section minmax); stage 2 starts from the theta0 of this method", choices=C.WSL_METHODS),
        "crf": _k(bool, "min-max entropy WSL: refine the localiser's masks with a dense CRF at evaluation (metrics "
                  "with and without it are reported; needs pydensecrf2)"),
        "crf_pseudo_masks": _k(bool, "Label_prop: refine the pseudo-masks with a dense CRF (needs pydensecrf2)"),
        "crf_preset": _k(str, "dense-CRF parameters of the reference code: glas, cub (CUB and Oxford flowers) or "
                         "default", choices=C.CRF_PRESETS),
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
    "minmax": {
        "sigma": _k(float, "min-max entropy: foreground threshold of the normalised map (R+ = sigmoid(w (M - sigma)))",
                    minimum=0.0, maximum=1.0),
        "w": _k(float, "min-max entropy: slope of the soft foreground map", minimum=0.0),
        "scale": _k(float, "min-max entropy: resize factor of the masked images the classifier sees",
                    minimum=0.05, maximum=1.0),
        "pool_dropout": _k(float, "min-max entropy: dropout on the sorted activations of both WILDCAT heads",
                      minimum=0.0, maximum=0.99),
        "erase_steps": _k(int, "min-max entropy: recursive erasing steps per batch (0: no erasing)", minimum=0),
        "erase_from_epoch": _k(int, "min-max entropy: first epoch (0-based) that erases", minimum=0),
        "sigma_erase": _k(float, "min-max entropy: trust decay exp(-t / sigma_erase) of erasing step t", minimum=0.0),
        "detach_map": _k(bool, "min-max entropy: the foreground map enters the classifier detached, so the entropy "
                         "terms never reach the localiser head (the reference code; false: the paper's text)"),
        "normalise": _k(str, "min-max entropy: min-max normalisation of the foreground map in training, over the "
                        "whole batch (the reference code) or per image (evaluation is always per image)",
                        choices=C.MINMAX_NORMALISATIONS),
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
    "al_type", "al_it", "al_it_end", "redo_round", "max_al_its", "exp_id", "exp_root", "debug_subfolder", "MYSEED", "cudaid",
    "device", "deterministic", "amp_bf16", "channels_last", "progress", "keep_models", "tensorboard", "task", "dataset", "data_root", "oracle",
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
                              "oracle_answers", "label_studio_url", "label_studio_token_file"})


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


def section_task(section: str) -> str:
    return key_task(f"{section}{SEPARATOR}{next(iter(SCHEMA[section]))}") or C.TASK_JOINT


def key_spec(path: str) -> Key:
    section, _, name = path.rpartition(SEPARATOR)
    return SCHEMA[section][name]
