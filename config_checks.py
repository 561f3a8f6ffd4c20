"""The rules of a resolved configuration that involve several keys: rounds, folders and names, and what each task,
method and oracle needs of the others. parseit checks every key alone against the schema, then calls check_keys."""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from typing import Any

import constants as C
from config_schema import ConfigError, accepts

# Folder keys that may not be empty strings (an empty path would be the repository root).
FOLDER_KEYS = ("exp_root", "fold_folder", "cache_dir")


def check_keys(data: dict[str, Any]) -> None:
    """Rules that involve several keys of a resolved configuration (each key alone is checked by parseit)."""
    method = data["al_type"]
    if data["al_it"] >= data["max_al_its"]:
        raise ConfigError(f"al_it {data['al_it']} is past the study's last round {data['max_al_its'] - 1}: "
                          "lower --al_it or raise --max_al_its")
    end = data["al_it_end"]
    if end is not None and not data["al_it"] <= end < data["max_al_its"]:
        raise ConfigError(f"al_it_end {end} must lie in [al_it={data['al_it']}, max_al_its-1="
                          f"{data['max_al_its'] - 1}]")
    if data["redo_round"] is not None and data["redo_round"] != data["al_it"]:
        raise ConfigError(f"redo_round {data['redo_round']} runs round {data['redo_round']} again, but al_it is "
                          f"{data['al_it']}: pass --al_it {data['redo_round']} too")
    if method in C.SINGLE_ROUND_METHODS and (data["al_it"] != 0 or end not in (None, 0)):
        raise ConfigError(f"{method} has a single round, got al_it {data['al_it']} and al_it_end {end}: "
                          "use --al_it 0 and no al_it_end")
    if method in C.MC_METHODS and data["mcdropout_t"] < 1:
        raise ConfigError(f"{method} needs at least one stochastic pass, got mcdropout_t {data['mcdropout_t']}: "
                          "pass --mcdropout_t 50")
    empty = [key for key in FOLDER_KEYS if isinstance(data.get(key), str) and not data[key].strip()]
    if empty:
        raise ConfigError(f"{empty[0]} is empty: pass a folder (a relative path is taken from the repository)")
    if data["exp_id"] is not None and not _safe_name(data["exp_id"]):
        raise ConfigError(f"exp_id '{data['exp_id']}' may hold only letters, digits and . _ - : choose another")
    if data["debug_subfolder"] and not all(_safe_name(part) for part in data["debug_subfolder"].split("/")):
        raise ConfigError(f"debug_subfolder '{data['debug_subfolder']}' must be a relative path of names made of "
                          "letters, digits and . _ - (no '..', no leading '/'): choose another")
    {C.TASK_CLASSIFICATION: _check_classification, C.TASK_SEGMENTATION: _check_segmentation}.get(
        data["task"], _check_joint)(data)
    if accepts(data["task"], "hu_ridge"):
        _check_strategy_keys(data)


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
        raise ConfigError(f"oracle_answers {data['oracle_answers']!r} is read only when a person is the oracle through "
                          "files (--oracle label_studio pulls its answers from the server): add --oracle files, or drop "
                          "--oracle_answers")
    if data["oracle"] == C.ORACLE_LABEL_STUDIO and not _is_http_address(data["label_studio_url"]):
        raise ConfigError(f"label_studio_url {data['label_studio_url']!r} is not an http(s) address: pass "
                          "--label_studio_url http://HOST:PORT (the address `bash dependencies/label_studio.sh start` "
                          "prints)")
    if (data["annotation_unit"] == C.UNIT_REGION and method not in C.PIXEL_METHODS
            and method not in C.SINGLE_ROUND_METHODS):
        raise ConfigError(f"{method} scores whole images, so it cannot pick regions (annotation_unit region): "
                          f"use --annotation_unit image, or one of {', '.join(C.PIXEL_METHODS)}")


def _is_http_address(text: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


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
    model = data["classification"]["model"]
    if method == C.LL4AL and not model.strip().lower().startswith(C.LL4AL_MODEL_PREFIXES):
        raise ConfigError(f"LL4AL needs a ResNet (its loss-prediction module reads the four residual stages) and "
                          f"classification.model is {model}: pass --model resnet18 (or another resnet, resnext or "
                          "wide_resnet)")
    if method in C.MC_METHODS and data["classification"]["head_dropout"] <= 0:
        raise ConfigError(f"{method} samples dropout masks but classification.head_dropout is "
                          f"{data['classification']['head_dropout']:g}: pass --head_dropout 0.3")


def _check_joint(data: dict[str, Any]) -> None:
    method = data["al_type"]
    if data["dataset"] in (*C.CLASSIFICATION_DATASETS, *C.SEGMENTATION_DATASETS):
        raise ConfigError(f"dataset {data['dataset']} has no binary masks for the joint task: pass --yaml with a "
                          "configuration of its task")
    if method not in C.SINGLE_ROUND_METHODS and data["p_samples"] <= 0:
        raise ConfigError(f"p_samples {data['p_samples']:g} asks the oracle for nothing per round: pass a percentage "
                          "of the train set in (0, 100], e.g. --p_samples 5")
    if method == C.WSL and data["estimate_seg_thres"]:
        raise ConfigError("WSL masks use the fixed threshold seg_threshold: set --estimate_seg_thres false")
    _check_crf(data)
    if method in C.MC_METHODS and data["model"]["backbone_dropout"] <= 0:
        raise ConfigError(f"{method} samples dropout masks but model.backbone_dropout is "
                          f"{data['model']['backbone_dropout']:g}: pass --backbone_dropout 0.2")
    _check_pixel_labels(data)
    if data["min_histc"] >= data["max_histc"]:
        raise ConfigError(f"min_histc {data['min_histc']} must be below max_histc {data['max_histc']}")


def _check_crf(data: dict[str, Any]) -> None:
    """A dense CRF the run will use must be installed before anything is trained."""
    method = data["al_type"]
    if (data["crf"] and method == C.WSL and data["wsl_method"] == C.WSL_MINMAX) or (
            data["crf_pseudo_masks"] and method == C.LABEL_PROP):
        from engine.crf import CrfUnavailable, require_crf
        try:
            require_crf()
        except CrfUnavailable as exc:
            raise ConfigError(str(exc)) from None


def _safe_name(text: str) -> bool:
    return bool(text) and all(ch.isalnum() or ch in "._-" for ch in text) and not text.startswith(".")
