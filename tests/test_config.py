"""Configuration: YAML files, command-line overrides, method overrides, errors, and yaml-gen.py."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

import constants as C
from al.selection import initial_per_class, round_count
from parseit import (
    CONFIG_DIR,
    IGNORED_ORIGINAL_KEYS,
    SCHEMA,
    Config,
    ConfigError,
    accepts,
    config_differences,
    help_text,
    key_task,
    parse_config,
    save_config,
    summary,
)

REPO = Path(__file__).resolve().parents[1]
GLAS = ["--yaml", "glas.yaml"]
CUB = ["--yaml", "cub.yaml"]


def _cfg(*args: str) -> Config:
    return parse_config([*GLAS, *args])


def _error(argv: list[str], config_dir: Path = CONFIG_DIR) -> str:
    """The ConfigError message of a rejected command line, checked to be one line."""
    with pytest.raises(ConfigError) as info:
        parse_config(argv, config_dir)
    message = str(info.value)
    assert message and "\n" not in message
    return message


def _glas_text() -> str:
    return (CONFIG_DIR / "glas.yaml").read_text()


def _yaml_gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("yaml_gen", REPO / "yaml-gen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def yaml_gen() -> ModuleType:
    return _yaml_gen()


@pytest.fixture(scope="module")
def main_runs() -> dict[str, subprocess.CompletedProcess]:
    """`main.py --yaml glas.yaml --lr abc`, `--al_type Nope` and `--help`, run side by side (each imports torch)."""
    commands = {"bad_lr": [*GLAS, "--lr", "abc"], "bad_method": [*GLAS, "--al_type", "Nope"], "help": ["--help"]}
    procs = {name: subprocess.Popen([sys.executable, "main.py", *args], cwd=REPO, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
             for name, args in commands.items()}
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        out[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return out


# ----------------------------------------------------------------------------- value types


@pytest.mark.parametrize(("text", "expected"), [("7", 7), ("0", 0), ("123456", 123456)])
def test_int_override(text: str, expected: int) -> None:
    cfg = _cfg("--MYSEED", text)
    assert cfg.MYSEED == expected and type(cfg.MYSEED) is int


@pytest.mark.parametrize("text", ["1.5", "abc", "1e3", "", "true"])
def test_int_key_rejects_non_integers(text: str) -> None:
    message = _error([*GLAS, "--knn", text])
    assert "knn" in message and repr(text) in message


@pytest.mark.parametrize(("text", "expected"), [("0.5", 0.5), ("1e-4", 1e-4), ("1", 1.0), ("3", 3.0),
                                                ("1e-07", 1e-7)])
def test_float_override(text: str, expected: float) -> None:
    cfg = _cfg("--scale_seg_u", text)
    assert cfg.scale_seg_u == expected and type(cfg.scale_seg_u) is float


@pytest.mark.parametrize("text", ["abc", "0.1.2", ""])
def test_float_key_rejects_non_numbers(text: str) -> None:
    message = _error([*GLAS, "--scale_seg_u", text])
    assert "scale_seg_u" in message and repr(text) in message


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("True", True), ("TRUE", True), ("1", True),
                                                ("false", False), ("False", False), ("FaLsE", False),
                                                ("0", False)])
def test_bool_override(text: str, expected: bool) -> None:
    assert _cfg("--hflip", text).hflip is expected
    assert _cfg("--optimizer.nesterov", text).optimizer.nesterov is expected


@pytest.mark.parametrize("text", ["yes", "no", "2", "t", ""])
def test_bool_key_rejects_other_words(text: str) -> None:
    message = _error([*GLAS, "--pre_trained", text])
    assert "pre_trained" in message and repr(text) in message


def test_str_override() -> None:
    cfg = _cfg("--exp_root", "some/where", "--cudaid", "1", "--debug_subfolder", "paper_label_prop/glas/Random")
    assert cfg.exp_root == "some/where"
    assert cfg.cudaid == "1"
    assert cfg.debug_subfolder == "paper_label_prop/glas/Random"


@pytest.mark.parametrize("text", ["null", "None", "NULL", "none"])
def test_null_on_nullable_keys(text: str) -> None:
    cfg = parse_config([*GLAS, "--up_scale_small_dim_to", text, "--path_pre_trained", text, "--cache_dir", text])
    assert cfg.up_scale_small_dim_to is None
    assert cfg.path_pre_trained is None
    assert cfg.cache_dir is None


def test_nullable_key_also_takes_a_value() -> None:
    cfg = _cfg("--up_scale_small_dim_to", "500", "--path_pre_trained", "./pretrained/resnet18-glas.pt")
    assert cfg.up_scale_small_dim_to == 500
    assert cfg.path_pre_trained == "./pretrained/resnet18-glas.pt"


@pytest.mark.parametrize(("key", "text"), [("MYSEED", "null"), ("lr", "None"), ("exp_root", "null"),
                                           ("hflip", "None")])
def test_null_on_non_nullable_key_is_rejected(key: str, text: str) -> None:
    message = _error([*GLAS, f"--{key}", text])
    assert key in message and repr(text) in message


def test_schema_has_no_list_keys() -> None:
    # The list syntax of the parser has nothing to apply to yet; a list key would need tests here.
    assert all(spec.type is not list for keys in SCHEMA.values() for spec in keys.values())


CHOICES = [
    ("al_type", "Entropy", "entropy"),
    ("dataset", C.CUB, "CUB"),
    ("device", "cpu", "gpu"),
    ("name_lr_scheduler", "none", "cosine"),
    ("mc_score", C.SCORE_BALD, "BALD"),
    ("mc_score", C.SCORE_VARIANCE, "entropy"),
    ("ensemble_score", C.SCORE_BALD, "mutual_information"),
    ("ensemble_score", C.SCORE_VARIANCE, "Entropy"),
    ("hu_pca_metric", "val_l2", "l2"),
    ("seg_loss_normalisation", C.NORM_GROUP, "batch"),
    ("padding_mode", "constant", "zeros"),
    ("scale_algo", "BICUBIC", "bicubic"),
]


@pytest.mark.parametrize(("key", "good", "bad"), CHOICES)
def test_choice_keys(key: str, good: str, bad: str) -> None:
    cfg = _cfg(f"--{key}", good)
    section = next(s for s, keys in SCHEMA.items() if key in keys)
    assert (cfg[section] if section else cfg)[key] == good
    message = _error([*GLAS, f"--{key}", bad])
    assert key in message and repr(bad) in message and good in message  # the allowed values are listed


def test_every_choice_of_every_choice_key_is_accepted() -> None:
    """In a file of the key's task (the task itself comes with the file: see the next test)."""
    for section, keys in SCHEMA.items():
        for name, spec in keys.items():
            path = f"{section + '.' if section else ''}{name}"
            if spec.choices is None or spec.type is not str or name == "task":
                continue
            base = {C.TASK_CLASSIFICATION: ["--yaml", "digits.yaml"], C.TASK_SEGMENTATION: ["--yaml", "scenes.yaml"]
                    }.get(key_task(path), GLAS)
            for choice in spec.choices:
                if name == "al_type" and key_task(path) is None:
                    base = GLAS if choice not in C.CLASSIFICATION_METHODS else base
                if name == "dataset":   # a dataset comes with its task's file
                    base = (["--yaml", "digits.yaml"] if choice in C.CLASSIFICATION_DATASETS else
                            ["--yaml", "scenes.yaml"] if choice in C.SEGMENTATION_DATASETS else GLAS)
                cfg = parse_config([*base, f"--{path}", choice])
                assert (cfg[section] if section else cfg)[name] == choice


def test_the_task_comes_with_the_file_and_keys_of_the_other_task_are_refused() -> None:
    assert _cfg().task == C.TASK_JOINT and "classification" not in _cfg()
    digits = parse_config(["--yaml", "digits.yaml"])
    assert digits.task == C.TASK_CLASSIFICATION and "scale_seg" not in digits and digits.classification.n_start == 2
    assert "the task comes with the file" in _error([*GLAS, "--task", "classification"])
    assert "applies to the classification task only" in _error([*GLAS, "--n_start", "3"])
    assert "applies to the joint task only" in _error(["--yaml", "digits.yaml", "--knn", "3"])
    assert "joint task only" in _error(["--yaml", "digits.yaml", "--al_type", "Label_prop"])


@pytest.mark.parametrize(("key", "inside", "outside"), [
    ("crop_size", "8", "7"),
    ("ratio_scale_patch", "4.0", "4.01"),
    ("ratio_scale_patch", "0.05", "0.04"),
    ("padding_ratio", "0.0", "-0.1"),
    ("padding_ratio", "0.5", "0.51"),
    ("p_init_samples", "100", "101"),
    ("p_samples", "100", "-1"),   # 0 is refused by the methods that select (test_reliability_inputs)
    ("kmax", "1.0", "1.5"),
    ("backbone_dropout", "0.99", "1.0"),
    ("lr", "0", "-0.1"),
    ("MYSEED", "0", "-1"),
    ("knn", "1", "0"),
    ("seg_threshold", "1", "1.2"),
    ("ensemble_size", "2", "1"),
    ("coreset_chunk", "1", "0"),
    ("hu_ridge", "1e-12", "-1e-6"),
    ("hu_pca_dim", "0", "-1"),
    ("hu_knn_k", "1", "0"),
    ("hu_knn_max_per_class", "1", "0"),
])
def test_range_checks(key: str, inside: str, outside: str) -> None:
    _cfg(f"--{key}", inside)
    message = _error([*GLAS, f"--{key}", outside])
    assert key in message and repr(outside) in message


@pytest.mark.parametrize(("key", "text"), [("ratio_scale_patch", "nan"), ("lr", "nan"), ("kmax", "nan")])
def test_nan_is_outside_every_range(key: str, text: str) -> None:
    # A NaN compares false with both bounds; it must not slip through a bounded key.
    message = _error([*GLAS, f"--{key}", text])
    assert key in message


# ----------------------------------------------------------------------------- key spellings


def test_section_keys_dotted_and_bare() -> None:
    assert _cfg("--model.base_width", "7").model.base_width == 7
    assert _cfg("--base_width", "7").model.base_width == 7
    assert _cfg("--optimizer.lr=0.5").optimizer.lr == 0.5
    assert _cfg("--lr=0.5").optimizer.lr == 0.5
    assert _cfg("--lr", "0.25").optimizer.lr == 0.25
    assert _cfg("--num_classes", "3").model.num_classes == 3


def test_top_level_key_with_equals() -> None:
    assert _cfg("--knn=12").knn == 12
    assert _cfg("--exp_root=a=b").exp_root == "a=b"


@pytest.mark.parametrize("name", ["model.lr", "optimizer.base_width", "nosection.lr", "lr_typo", "optn0__base_width"])
def test_key_in_the_wrong_place_is_unknown(name: str) -> None:
    message = _error([*GLAS, f"--{name}", "1"])
    assert name in message and "unknown key" in message


def test_last_occurrence_wins() -> None:
    assert _cfg("--lr", "1", "--lr", "2").optimizer.lr == 2.0
    assert _cfg("--lr", "1", "--lr", "2", "--optimizer.lr=3").optimizer.lr == 3.0
    assert _cfg("--optimizer.lr", "3", "--lr", "1", "--lr=2").optimizer.lr == 2.0
    assert _cfg("--backbone_dropout", "0.0", "--knn", "5", "--backbone_dropout", "0.3").model.backbone_dropout == 0.3


def test_negative_numbers_are_values_not_options() -> None:
    cfg = _cfg("--min_histc", "-1", "--max_histc", "-0.5")
    assert (cfg.min_histc, cfg.max_histc) == (-1.0, -0.5)


@pytest.mark.parametrize(("argv", "words"), [
    ([*GLAS, "glas.yaml"], "glas.yaml"),
    ([*GLAS, "--lr"], "--lr"),
    ([*GLAS, "--lr", "--knn", "3"], "--lr"),
    ([*GLAS, "-lr", "0.1"], "-lr"),
])
def test_malformed_command_lines(argv: list[str], words: str) -> None:
    assert words in _error(argv)


# ----------------------------------------------------------------------------- method overrides


def test_defaults_of_glas() -> None:
    cfg = parse_config(GLAS)
    assert cfg.al_type == C.RANDOM
    assert cfg.optimizer.lr == 0.1
    assert cfg.model.backbone_dropout == 0.0
    assert cfg.yaml == "glas.yaml"


def test_wsl_override() -> None:
    cfg = _cfg("--al_type", "WSL")
    assert cfg.optimizer.lr == 1e-4
    assert cfg.estimate_seg_thres is False and cfg.estimate_pseg_thres is False
    assert cfg.max_epochs == 1000  # glas WSL keeps the 1000 epochs


def test_command_line_wins_over_method_override() -> None:
    assert _cfg("--al_type", "WSL", "--lr", "0.5").optimizer.lr == 0.5
    assert _cfg("--lr", "0.5", "--al_type", "WSL").optimizer.lr == 0.5
    assert _cfg("--al_type", "MC_Dropout", "--backbone_dropout", "0.1").model.backbone_dropout == 0.1


def test_override_follows_the_last_al_type() -> None:
    assert _cfg("--al_type", "WSL", "--al_type", "Random").optimizer.lr == 0.1
    assert _cfg("--al_type", "Random", "--al_type", "WSL").optimizer.lr == 1e-4


@pytest.mark.parametrize("method", C.MC_METHODS)
def test_mc_methods_override(method: str) -> None:
    cfg = _cfg("--al_type", method)
    assert cfg.model.backbone_dropout == 0.2
    assert cfg.optimizer.lr == 0.1


NON_MC_STAGE2 = [m for m in C.METHODS if m != C.WSL and m not in C.MC_METHODS]


@pytest.mark.parametrize("method", NON_MC_STAGE2)
def test_stage2_methods_get_no_override(method: str) -> None:
    cfg = _cfg("--al_type", method)
    assert cfg.optimizer.lr == 0.1 and cfg.model.backbone_dropout == 0.0
    assert cfg.estimate_seg_thres is True


# ----------------------------------------------------------------------------- the paper's command lines


def _paper_keys(al_type: str) -> list[str]:
    """What the paper's generated GlaS scripts pass (besides --yaml/--MYSEED/--al_it/--exp_id), as str(value).

    The optimiser keys are spelt --optn0__<key> as the scripts write them, the methods other than
    MC_Dropout pass `--mcdropout_t 0`, and options of the original with no effect here are passed too.
    """
    wsl = al_type == C.WSL
    mc = al_type == C.MC_DROPOUT
    keys = {
        "batch_size": 20, "valid_batch_size": 1, "max_epochs": 1000,
        "name_model": "hybrid_model", "backbone": "resnet18", "backbone_dropout": 0.0,
        "path_pre_trained": None if wsl else "./pretrained/resnet18-glas.pt", "pre_trained": True,
        "alpha": 0.6, "kmax": 0.1, "kmin": 0.1, "dropout": 0.1, "modalities": 5,
        "crop_size": 416, "ratio_scale_patch": 0.9, "up_scale_small_dim_to": 432, "padding_ratio": 0.01,
        "pad_eval": True, "cudaid": 0,
        "dataset": "glas", "p_init_samples": 100 * 8 / 67.0, "p_samples": 100 * 2 / 67.0, "max_al_its": 25,
        "task": "SEGMENTATION", "split": 0, "fold": 0,
        "subtask": "CLASSIFICATION" if wsl else "Classification_Segmentation",
        "nbr_bins_histc": 256, "min_histc": 0.0, "max_histc": 1.0, "sigma_histc": 1e5,
        "resize_h_to_opt_mask": 128, "smooth_img": True, "smooth_img_ksz": 3, "smooth_img_sigma": 0.9,
        "enhance_color": True, "enhance_color_fact": 3.0,
        "debug_subfolder": f"paper_label_prop/glas/{al_type}",
        "knn": 40, "freeze_classifier": not wsl,
        "segloss_l": "BinCrossEntropySegmLoss", "segloss_pl": "BinCrossEntropySegmLoss",
        "scale_cl": 1.0, "scale_seg": 1.0, "scale_seg_u": 0.1, "scale_seg_u_sch": "ConstantWeight",
        "weight_pseudo_loss": False, "protect_pl": True, "estimate_pseg_thres": True,
        "estimate_seg_thres": not wsl, "seg_threshold": 0.5, "base_width": 24, "leak": 64, "seg_elbon": False,
        "loss": "HybridLoss", "al_type": al_type,
        "optn0__name_optimizer": "sgd", "optn0__lr": 0.0001 if wsl else 0.1, "optn0__weight_decay": 1e-4,
        "optn0__momentum": 0.9, "optn0__name_lr_scheduler": "mystep", "optn0__step_size": 100,
        "optn0__gamma": 0.9, "optn0__min_lr": 1e-7,
        # Options of the original with no effect here: accepted and ignored.
        "optn0__lr_scheduler": True, "optn0__t_max": 50.0, "dropoutnetssl": 0.5, "scale_seg_u_end": 1e-9,
        "mcdropout_t": 0,
    }
    argv = [token for key, value in keys.items() for token in (f"--{key}", str(value))]
    if mc:
        argv += ["--backbone_dropout", "0.2", "--mcdropout_t", "50"]
    return argv


def test_cub_original_spelling() -> None:
    cfg = parse_config(["--yaml", "Caltech-UCSD-Birds-200-2011.yaml", "--dataset", "Caltech-UCSD-Birds-200-2011",
                        "--al_type", "Random"])
    assert cfg.dataset == C.CUB and cfg.model.num_classes == 200


@pytest.mark.parametrize("method", C.MC_METHODS)
def test_mc_methods_need_passes(method: str) -> None:
    message = _error([*GLAS, "--al_type", method, "--mcdropout_t", "0"])
    assert method in message and "mcdropout_t 0" in message and "--mcdropout_t 50" in message
    assert _cfg("--al_type", method, "--mcdropout_t", "1").mcdropout_t == 1


@pytest.mark.parametrize("method", C.MC_METHODS)
def test_mc_methods_need_dropout(method: str) -> None:
    message = _error([*GLAS, "--al_type", method, "--backbone_dropout", "0"])
    assert message == (f"{method} samples dropout masks but model.backbone_dropout is 0: "
                       "pass --backbone_dropout 0.2")
    assert _cfg("--al_type", method, "--backbone_dropout", "0.05").model.backbone_dropout == 0.05


def test_other_methods_run_without_dropout_or_passes() -> None:
    for method in NON_MC_STAGE2:
        cfg = _cfg("--al_type", method, "--backbone_dropout", "0", "--mcdropout_t", "0")
        assert cfg.model.backbone_dropout == 0.0 and cfg.mcdropout_t == 0


def test_paper_round_command_line() -> None:
    exp_id = "01_31_2021_12_00_00_123456__4242"
    cfg = parse_config([*GLAS, "--MYSEED", "0", "--al_type", "Label_prop", "--al_it", "3", "--exp_id", exp_id,
                        "--cudaid", "0"])
    assert (cfg.al_type, cfg.al_it, cfg.exp_id, cfg.cudaid, cfg.MYSEED) == ("Label_prop", 3, exp_id, "0", 0)


@pytest.mark.parametrize("method", [C.WSL, C.LABEL_PROP, C.MC_DROPOUT, C.FULL_SUP])
def test_paper_generated_keys(method: str, capsys: pytest.CaptureFixture[str]) -> None:
    al_it = "0" if method in C.SINGLE_ROUND_METHODS else "24"
    cfg = parse_config([*GLAS, "--MYSEED", "4", *_paper_keys(method), "--al_it", al_it, "--exp_id", "ID"])
    note = capsys.readouterr().err.splitlines()
    assert len(note) == 1 and note[0].startswith("note: ignoring options of the original")
    assert all(name in note[0] for name in ("subtask", "freeze_classifier", "optn0__name_optimizer", "optn0__t_max"))
    assert cfg.al_type == method and cfg.al_it == int(al_it) and cfg.MYSEED == 4
    assert cfg.valid_batch_size == 1 and cfg.optimizer.min_lr == 1e-7
    assert cfg.optimizer.lr == (1e-4 if method == C.WSL else 0.1)
    assert cfg.path_pre_trained == (None if method == C.WSL else "./pretrained/resnet18-glas.pt")
    assert cfg.model.backbone_dropout == (0.2 if method == C.MC_DROPOUT else 0.0)
    assert cfg.debug_subfolder == f"paper_label_prop/glas/{method}"
    assert not _flat_keys(cfg.to_dict()) & {"subtask", "sigma_histc", "freeze_classifier", "backbone",
                                            "name_model", "name_optimizer", "seg_elbon", "loss"}
    assert cfg.task == C.TASK_JOINT  # the original's task SEGMENTATION is the joint task


# ----------------------------------------------------------------------------- options of the original with no effect

# The fourteen keys of the original that change nothing here: (place in a YAML file, command-line
# spellings, a value as YAML / command-line text). The values include ones the keys once rejected.
REMOVED = [
    ("clustering", ("clustering",), "Random"),
    ("share_masks", ("share_masks",), "true"),
    ("use_dist_global_hist", ("use_dist_global_hist",), "false"),
    ("sigma_histc", ("sigma_histc",), "100000.0"),
    ("loss", ("loss",), "HybridLoss"),
    ("segloss_l", ("segloss_l",), "BinCrossEntropySegmLoss"),
    ("segloss_pl", ("segloss_pl",), "BinCrossEntropySegmLoss"),
    ("scale_seg_u_sch", ("scale_seg_u_sch",), "ConstantWeight"),
    ("seg_elbon", ("seg_elbon",), "true"),
    ("subtask", ("subtask",), "CLASSIFICATION"),
    ("freeze_classifier", ("freeze_classifier",), "null"),
    ("model.name_model", ("name_model", "model.name_model"), "hybrid_model"),
    ("model.backbone", ("backbone", "model.backbone"), "resnet18"),
    ("optimizer.name_optimizer", ("name_optimizer", "optimizer.name_optimizer", "optn0__name_optimizer"), "adam"),
]
REMOVED_SPELLINGS = [(name, value) for _, names, value in REMOVED for name in names]
NOTE = "note: ignoring options of the original that have no effect here: "


def _flat_keys(data: dict) -> set[str]:
    """Every key name of a nested mapping, at any depth."""
    return {k for key, value in data.items()
            for k in ({key} | (_flat_keys(value) if isinstance(value, dict) else set()))}


def _leaf(path: str) -> str:
    return path.rpartition(".")[2].removeprefix("optn0__")


def _old_style_glas() -> str:
    """glas.yaml as earlier versions wrote it: the fourteen keys at their places in the file."""
    lines = _glas_text().splitlines()
    for path, _, value in reversed(REMOVED):
        section, _, name = path.rpartition(".")
        at = lines.index(f"{section}:") + 1 if section else 2
        lines.insert(at, f"{'  ' if section else ''}{name}: {value}  # an option of the original")
    # The original named the joint task SEGMENTATION.
    return "\n".join(lines).replace("\ntask: joint ", "\ntask: SEGMENTATION ") + "\n"


def test_removed_keys_are_not_in_the_schema() -> None:
    for path, names, _ in REMOVED:
        section, _, name = path.rpartition(".")
        assert name not in SCHEMA[section]
        assert all(spelling in IGNORED_ORIGINAL_KEYS for spelling in names)
    assert all(not spec.doc.startswith("null: derived") for keys in SCHEMA.values() for spec in keys.values())


@pytest.mark.parametrize(("name", "value"), REMOVED_SPELLINGS)
def test_removed_key_on_the_command_line(name: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _cfg(f"--{name}", value, "--knn", "7")
    assert cfg.knn == 7
    assert capsys.readouterr().err.splitlines() == [f"{NOTE}{name} (command line)"]
    assert _leaf(name) not in _flat_keys(cfg.to_dict())
    assert cfg.to_dict() == _cfg("--knn", "7").to_dict()  # it changes nothing


def test_removed_keys_all_on_one_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [token for name, value in REMOVED_SPELLINGS for token in (f"--{name}", value)]
    cfg = _cfg("--al_type", "WSL", *argv)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(NOTE) and err[0].endswith(" (command line)")
    listed = err[0].removeprefix(NOTE).removesuffix(" (command line)").split(", ")
    assert sorted(listed) == sorted(name for name, _ in REMOVED_SPELLINGS)  # each one once
    assert not _flat_keys(cfg.to_dict()) & {_leaf(path) for path, _, _ in REMOVED}


def test_old_yaml_with_removed_keys_still_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _old_style_glas()
    assert "\ntask: SEGMENTATION" in text and "\n  backbone: resnet18" in text
    assert "\n  name_optimizer: adam" in text
    cfg = parse_config(["--yaml", "mine.yaml", "--al_type", "Entropy"], _write(tmp_path, text))
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(NOTE) and err[0].endswith(" (mine.yaml)")
    listed = err[0].removeprefix(NOTE).removesuffix(" (mine.yaml)").split(", ")
    assert sorted(listed) == sorted(path for path, _, _ in REMOVED)
    assert not _flat_keys(cfg.to_dict()) & {_leaf(path) for path, _, _ in REMOVED}
    assert cfg.to_dict() | {"yaml": "glas.yaml"} == _cfg("--al_type", "Entropy").to_dict()
    saved = tmp_path / "run" / "config.yaml"
    save_config(cfg, saved)
    assert not _flat_keys(yaml.safe_load(saved.read_text())) & {_leaf(path) for path, _, _ in REMOVED}


@pytest.mark.parametrize(("path", "value"), [(path, value) for path, _, value in REMOVED])
def test_removed_key_alone_in_a_yaml_file(path: str, value: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    section, _, name = path.rpartition(".")
    text = _glas_text().replace(f"\n{section}:\n", f"\n{section}:\n  {name}: {value}\n") if section \
        else _glas_text().replace("\nknn: 40", f"\n{name}: {value}\nknn: 40")
    assert text != _glas_text()
    cfg = parse_config(["--yaml", "mine.yaml"], _write(tmp_path, text))
    assert capsys.readouterr().err.splitlines() == [f"{NOTE}{path} (mine.yaml)"]
    assert name not in _flat_keys(cfg.to_dict())


@pytest.mark.parametrize(("text_from", "text_to", "unknown"), [
    ("\nknn: 40", "\nname_model: hybrid_model\nknn: 40", "name_model"),      # a model key at the top level
    ("\nmodel:\n", "\nmodel:\n  task: SEGMENTATION\n", "task"),               # a top-level key in a section
    ("\noptimizer:\n", "\noptimizer:\n  backbone: resnet18\n", "backbone"),  # in the other section
])
def test_removed_key_at_a_wrong_place_in_a_yaml_file(tmp_path: Path, text_from: str, text_to: str,
                                                     unknown: str) -> None:
    text = _glas_text().replace(text_from, text_to)
    assert text != _glas_text()
    message = _error(["--yaml", "mine.yaml"], _write(tmp_path, text))
    assert f"unknown key '{unknown}'" in message


@pytest.mark.parametrize(("name", "value"), REMOVED_SPELLINGS)
def test_removed_key_in_method_overrides(name: str, value: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    text = _glas_text() + f"  Entropy:\n    {name}: {value}\n    knn: 9\n"
    cfg = parse_config(["--yaml", "mine.yaml", "--al_type", "Entropy"], _write(tmp_path, text))
    assert cfg.knn == 9  # the rest of the override applies
    assert capsys.readouterr().err.splitlines() == [f"{NOTE}method_overrides.Entropy.{name} (mine.yaml)"]
    assert _leaf(name) not in _flat_keys(cfg.to_dict())
    assert cfg.method_overrides.Entropy.to_dict() == {"knn": 9}


def test_removed_keys_everywhere_give_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _old_style_glas() + "  Margin:\n    knn: 3\n  Coreset:\n    seg_elbon: true\n"
    cfg = parse_config(["--yaml", "mine.yaml", "--backbone", "resnet18", "--optn0__t_max", "50.0"],
                       _write(tmp_path, text))
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"{NOTE}backbone, optn0__t_max (command line); clustering, ")
    assert err[0].endswith(", optimizer.name_optimizer, method_overrides.Coreset.seg_elbon (mine.yaml)")
    assert "Margin" not in err[0]
    assert cfg.al_type == C.RANDOM


def test_help_text_ends_with_the_ignored_options() -> None:
    lines = help_text().splitlines()
    assert lines[-1].startswith("accepted and ignored")
    listed = lines[-1].partition(": ")[2].split(", ")
    assert sorted(listed) == sorted(f"--{name}" for name in IGNORED_ORIGINAL_KEYS)
    assert {"--backbone", "--model.backbone", "--optn0__name_optimizer", "--optn0__t_max"} <= set(listed)
    key_lines = [line.split()[0] for line in lines[:-1] if line.startswith("  --")]
    assert not set(key_lines) & set(listed)  # no ignored option is listed as a key


# ----------------------------------------------------------------------------- keys of the other strategies


@pytest.mark.parametrize(("name", "ensemble_size"), [(C.GLAS, 5), (C.CUB, 5), (C.OXFORD_FLOWERS, 5), (C.PH2, 5),
                                                     (C.SYNTHETIC, 3)])
def test_strategy_keys_values(name: str, ensemble_size: int) -> None:
    cfg = parse_config(["--yaml", f"{name}.yaml"])
    assert cfg.ensemble_size == ensemble_size
    assert (cfg.ensemble_score, cfg.coreset_chunk, cfg.hu_ridge) == (C.SCORE_ENTROPY, 4096, 1e-6)
    assert (cfg.hu_pca_dim, cfg.hu_pca_search, cfg.hu_pca_metric) == (0, False, "val")
    assert (cfg.hu_knn_k, cfg.hu_knn_max_per_class, cfg.mc_score) == (5, 1000, C.SCORE_VARIANCE)


def test_strategy_keys_follow_mc_score_in_the_schema() -> None:
    top = list(SCHEMA[""])
    new = ["ensemble_size", "ensemble_score", "coreset_chunk", "hu_ridge", "hu_pca_dim", "hu_pca_search",
           "hu_pca_metric", "hu_knn_k", "hu_knn_max_per_class"]
    at = top.index("mc_score") + 1
    assert top[at:at + len(new)] == new


def test_strategy_key_overrides() -> None:
    cfg = _cfg("--al_type", "HU", "--ensemble_size", "2", "--ensemble_score", "bald", "--coreset_chunk", "1",
               "--hu_ridge", "1e-3", "--hu_pca_dim", "8", "--hu_pca_search", "true", "--hu_pca_metric", "L1",
               "--hu_knn_k", "1", "--hu_knn_max_per_class", "50")
    assert (cfg.ensemble_size, cfg.ensemble_score, cfg.coreset_chunk) == (2, "bald", 1)
    assert (cfg.hu_ridge, cfg.hu_pca_dim, cfg.hu_pca_search, cfg.hu_pca_metric) == (1e-3, 8, True, "L1")
    assert (cfg.hu_knn_k, cfg.hu_knn_max_per_class) == (1, 50)
    assert type(cfg.hu_ridge) is float and type(cfg.ensemble_size) is int


def test_ensemble_size_one_is_rejected() -> None:
    message = _error([*GLAS, "--al_type", "Ensemble", "--ensemble_size", "1"])
    assert "ensemble_size" in message and "'1'" in message and "[2, inf)" in message


@pytest.mark.parametrize("method", [C.RANDOM, C.HU, C.HU_KNN])
def test_hu_ridge_zero_is_rejected(method: str) -> None:
    message = _error([*GLAS, "--al_type", method, "--hu_ridge", "0"])
    assert message.startswith("hu_ridge must be > 0") and message.endswith("pass --hu_ridge 1e-6")
    assert _cfg("--al_type", method, "--hu_ridge", "1e-12").hu_ridge == 1e-12


def test_hu_pca_search_needs_a_step() -> None:
    message = _error([*GLAS, "--al_type", "HU", "--hu_pca_search", "true", "--hu_pca_dim", "0"])
    assert "hu_pca_search" in message and "hu_pca_dim 0" in message and message.endswith("pass --hu_pca_dim 1")
    assert _cfg("--hu_pca_search", "true", "--hu_pca_dim", "1").hu_pca_search is True
    assert _cfg("--hu_pca_search", "false", "--hu_pca_dim", "0").hu_pca_dim == 0


def test_new_methods_in_the_al_type_doc() -> None:
    doc = SCHEMA[""]["al_type"].doc
    assert SCHEMA[""]["al_type"].choices == C.METHODS
    assert all(method in doc for method in C.METHODS)


# ----------------------------------------------------------------------------- error cases


def test_unknown_key() -> None:
    message = _error([*GLAS, "--learning_rate", "0.1"])
    assert "learning_rate" in message and "--help" in message


def test_wrong_type() -> None:
    message = _error([*GLAS, "--batch_size", "twenty"])
    assert "batch_size" in message and "'twenty'" in message and "integer" in message


def test_value_outside_allowed_set() -> None:
    message = _error([*GLAS, "--al_type", "Nope"])
    assert "al_type" in message and "'Nope'" in message
    assert all(method in message for method in C.METHODS)


def test_missing_yaml() -> None:
    assert "--yaml" in _error(["--lr", "0.1"])
    assert "--yaml" in _error([])


def test_unknown_yaml_file() -> None:
    message = _error(["--yaml", "nosuch.yaml"])
    assert "nosuch.yaml" in message and "glas" in message  # the available files are listed


def test_yaml_name_without_suffix_and_explicit_path(tmp_path: Path) -> None:
    assert parse_config(["--yaml", "glas"]).dataset == "glas"
    path = tmp_path / "mine.yaml"
    path.write_text(_glas_text())
    assert parse_config(["--yaml", str(path)]).yaml == "mine.yaml"
    assert parse_config(["--yaml=mine.yaml"], config_dir=tmp_path).yaml == "mine.yaml"


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "mine.yaml").write_text(text)
    return tmp_path


def test_yaml_with_unknown_key(tmp_path: Path) -> None:
    message = _error(["--yaml", "mine.yaml"], _write(tmp_path, _glas_text() + "frobnicate: 3\n"))
    assert "frobnicate" in message and "mine.yaml" in message


def test_yaml_with_unknown_key_in_a_section(tmp_path: Path) -> None:
    text = _glas_text().replace("model:\n", "model:\n  depth: 50\n")
    message = _error(["--yaml", "mine.yaml"], _write(tmp_path, text))
    assert "depth" in message and "model" in message


def test_yaml_with_missing_key(tmp_path: Path) -> None:
    text = "\n".join(line for line in _glas_text().splitlines() if not line.startswith("knn:")) + "\n"
    message = _error(["--yaml", "mine.yaml"], _write(tmp_path, text))
    assert "'knn'" in message and "mine.yaml" in message


def test_yaml_with_missing_section_key(tmp_path: Path) -> None:
    text = "\n".join(line for line in _glas_text().splitlines() if not line.startswith("  leak:")) + "\n"
    assert "model.leak" in _error(["--yaml", "mine.yaml"], _write(tmp_path, text))


def test_yaml_with_wrong_type(tmp_path: Path) -> None:
    text = _glas_text().replace("\nknn: 40", "\nknn: forty")
    message = _error(["--yaml", "mine.yaml"], _write(tmp_path, text))
    assert "knn" in message and "'forty'" in message


def test_invalid_yaml(tmp_path: Path) -> None:
    message = _error(["--yaml", "mine.yaml"], _write(tmp_path, _glas_text() + "knn: [40\n"))
    assert "mine.yaml" in message and "YAML" in message


def test_yaml_that_is_not_a_mapping(tmp_path: Path) -> None:
    assert "mine.yaml" in _error(["--yaml", "mine.yaml"], _write(tmp_path, "- 1\n- 2\n"))


def test_yaml_override_for_unknown_method(tmp_path: Path) -> None:
    text = _glas_text() + "  Nope:\n    lr: 0.1\n"
    message = _error(["--yaml", "mine.yaml"], _write(tmp_path, text))
    assert "Nope" in message and "HU_kNN" in message


def test_al_it_at_or_past_max_al_its() -> None:
    message = _error([*GLAS, "--al_it", "25"])
    assert "al_it 25" in message and "max_al_its" in message
    message = _error([*GLAS, "--al_it", "3", "--max_al_its", "3"])
    assert "al_it 3" in message
    assert _cfg("--al_it", "24").al_it == 24


def test_wsl_has_one_round() -> None:
    message = _error([*GLAS, "--al_type", "WSL", "--al_it", "1"])
    assert "WSL" in message and "al_it 1" in message


def test_full_sup_has_one_round() -> None:
    assert "Full_sup" in _error([*GLAS, "--al_type", "Full_sup", "--al_it", "2"])


def test_al_it_end_range() -> None:
    assert _cfg("--al_it", "2", "--al_it_end", "24").al_it_end == 24
    assert "al_it_end 25" in _error([*GLAS, "--al_it_end", "25"])
    assert "al_it_end 1" in _error([*GLAS, "--al_it", "2", "--al_it_end", "1"])


def test_cross_key_rules() -> None:
    assert "estimate_seg_thres" in _error([*GLAS, "--al_type", "WSL", "--estimate_seg_thres", "true"])
    assert "min_histc" in _error([*GLAS, "--min_histc", "1", "--max_histc", "1"])


@pytest.mark.parametrize("exp_id", ["../escape", "a/b", ".hidden", "sp ace"])
def test_unsafe_exp_id(exp_id: str) -> None:
    assert exp_id in _error([*GLAS, "--exp_id", exp_id])


# ----------------------------------------------------------------------------- the command-line exit path


def test_main_bad_value_exits_2_with_one_line(main_runs: dict[str, subprocess.CompletedProcess]) -> None:
    run = main_runs["bad_lr"]
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert "lr" in lines[0] and "'abc'" in lines[0]
    assert "Traceback" not in run.stderr


def test_main_unknown_method_exits_2_listing_the_methods(
        main_runs: dict[str, subprocess.CompletedProcess]) -> None:
    run = main_runs["bad_method"]
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "al_type" in lines[0] and "'Nope'" in lines[0]
    assert all(method in lines[0] for method in C.METHODS)
    assert "Traceback" not in run.stderr


def test_main_help_lists_keys(main_runs: dict[str, subprocess.CompletedProcess]) -> None:
    run = main_runs["help"]
    assert run.returncode == 0
    for name in ("--yaml", "--al_type", "--lr", "--base_width", "--mcdropout_t", "--seg_loss_normalisation"):
        assert name in run.stdout
    assert run.stdout.strip() == help_text().strip()


def test_help_text_lists_every_key() -> None:
    text = help_text()
    for keys in SCHEMA.values():
        for name, spec in keys.items():
            assert f"--{name} " in text and spec.doc in text


# ----------------------------------------------------------------------------- the Config object


def test_config_is_immutable() -> None:
    cfg = parse_config(GLAS)
    with pytest.raises(AttributeError):
        cfg.lr = 1
    with pytest.raises(AttributeError):
        cfg.al_it = 3
    with pytest.raises(AttributeError):
        cfg.model.base_width = 3
    with pytest.raises(TypeError):
        cfg["al_it"] = 3  # type: ignore[index]
    assert cfg.al_it == 0 and cfg.model.base_width == 24


def test_attribute_and_item_access() -> None:
    cfg = parse_config(GLAS)
    assert cfg["optimizer"]["lr"] == cfg.optimizer.lr == 0.1
    assert "knn" in cfg and len(cfg.model) == len(SCHEMA["model"])
    with pytest.raises(AttributeError):
        _ = cfg.no_such_key


def test_replace() -> None:
    cfg = parse_config(GLAS)
    new = cfg.replace(lr=0.5, model__base_width=7, al_it=2, cache_dir=None)
    assert (new.optimizer.lr, new.model.base_width, new.al_it) == (0.5, 7, 2)
    assert (cfg.optimizer.lr, cfg.model.base_width, cfg.al_it) == (0.1, 24, 0)
    assert new.knn == cfg.knn
    with pytest.raises(ConfigError, match="bogus"):
        cfg.replace(bogus=1)
    with pytest.raises(ConfigError, match="optimizer.lr"):
        cfg.replace(lr="fast")
    with pytest.raises(ConfigError, match="al_type"):
        cfg.replace(al_type="Nope")
    with pytest.raises(ConfigError, match="unknown key 'subtask'"):
        cfg.replace(subtask="SEGMENTATION")  # ignored on input, but never a key of a Config


def test_to_dict_is_a_copy() -> None:
    cfg = parse_config(GLAS)
    data = cfg.to_dict()
    data["model"]["base_width"] = 1
    data["knn"] = 1
    assert cfg.model.base_width == 24 and cfg.knn == 40


def test_save_config_round_trip(tmp_path: Path) -> None:
    cfg = _cfg("--al_type", "Label_prop", "--p_init_samples", str(800 / 67), "--exp_id", "x")
    path = tmp_path / "run" / "config.yaml"
    save_config(cfg, path)
    loaded = yaml.safe_load(path.read_text())
    assert loaded == cfg.to_dict()
    assert loaded["p_init_samples"] == 800 / 67
    assert Config(loaded) == cfg
    assert config_differences(loaded, cfg.to_dict()) == []
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.yaml"]  # no temporary file left behind


def test_summary_names_the_run() -> None:
    text = summary(_cfg("--al_type", "Label_prop", "--MYSEED", "3", "--al_it", "5"))
    assert "Label_prop" in text and "glas" in text and "seed 3" in text and "round 5" in text


def test_config_differences() -> None:
    a = parse_config(GLAS).to_dict()
    b = _cfg("--lr", "0.5", "--al_it", "2", "--base_width", "8").to_dict()
    assert config_differences(a, b) == ["al_it", "model.base_width", "optimizer.lr"]
    assert config_differences(a, b, ignore=("al_it",)) == ["model.base_width", "optimizer.lr"]
    current = b.copy()
    del current["knn"]
    assert config_differences(a, current) == ["al_it", "knn", "model.base_width", "optimizer.lr"]


def test_config_differences_skip_keys_the_saved_run_predates() -> None:
    # A run folder written before ensemble_size / hu_ridge / model.full_res_width existed lacks them.
    current = _cfg("--ensemble_size", "7", "--hu_ridge", "1e-3", "--full_res_width", "16").to_dict()
    saved = parse_config(GLAS).to_dict()
    assert config_differences(saved, current) == ["ensemble_size", "hu_ridge", "model.full_res_width"]
    for key in ("ensemble_size", "hu_ridge"):
        del saved[key]
    del saved["model"]["full_res_width"]
    assert config_differences(saved, current) == []
    # Keys present in both and differing are still reported.
    saved["knn"] = 3
    assert config_differences(saved, current) == ["knn"]
    # A section the saved configuration lacks is skipped as a whole.
    del saved["optimizer"]
    assert config_differences(saved, _cfg("--lr", "0.5", "--knn", "3").to_dict()) == []
    # Keys of earlier versions that are not in the schema any more are not compared.
    saved = {**parse_config(GLAS).to_dict(), "subtask": "Classification_Segmentation"}
    assert config_differences(saved, parse_config(GLAS).to_dict()) == []


# ----------------------------------------------------------------------------- yaml-gen.py and config_yaml/


def test_committed_yaml_files_are_what_yaml_gen_writes(yaml_gen: ModuleType) -> None:
    files = yaml_gen.config_files()
    assert {f"{name}-minmax" for name in (C.GLAS, C.CUB, C.OXFORD_FLOWERS, C.PH2)} <= set(files)
    assert sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")) == sorted(files)
    for name, values in files.items():
        assert (CONFIG_DIR / f"{name}.yaml").read_text() == yaml_gen.render(values), name


def test_yaml_gen_check_on_committed_files() -> None:
    run = subprocess.run([sys.executable, "yaml-gen.py", "--check"], cwd=REPO, capture_output=True, text=True, check=False,
                         timeout=120)
    assert run.returncode == 0, run.stderr


def test_yaml_gen_check_detects_stale_files(yaml_gen: ModuleType, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["yaml-gen.py", "--out", str(tmp_path)])
    yaml_gen.main()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.yaml" for n in yaml_gen.config_files())
    monkeypatch.setattr(sys, "argv", ["yaml-gen.py", "--out", str(tmp_path), "--check"])
    yaml_gen.main()  # fresh files: no exit
    path = tmp_path / "cub.yaml"
    path.write_text(path.read_text().replace("knn: 40", "knn: 41"))
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        yaml_gen.main()
    assert info.value.code == 1
    assert "cub.yaml" in capsys.readouterr().err
    path.unlink()
    with pytest.raises(SystemExit):
        yaml_gen.main()  # a missing file is stale too


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_key_has_its_comment(path: Path) -> None:
    lines = path.read_text().splitlines()
    assert lines[0].startswith("#")
    task = yaml.safe_load(path.read_text())["task"]
    for section, keys in SCHEMA.items():
        indent = "  " if section else ""
        for name, spec in keys.items():
            if not accepts(task, f"{section}.{name}" if section else name):
                assert not [line for line in lines if line.startswith(f"{indent}{name}: ")] or section == "", name
                continue
            hits = [line for line in lines if line.startswith(f"{indent}{name}: ")]
            assert len(hits) == 1, f"{path.name}: {name}"
            assert hits[0].endswith(f"  # {spec.doc}"), f"{path.name}: {name}"


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_file_parses_for_every_method(path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    task = raw["task"]
    methods = {C.TASK_CLASSIFICATION: C.CLASSIFICATION_METHODS, C.TASK_SEGMENTATION: C.SEGMENTATION_METHODS}
    for method in methods.get(task, C.METHODS):
        if method == C.LL4AL and task == C.TASK_CLASSIFICATION and not raw[
                "classification"]["model"].startswith(C.LL4AL_MODEL_PREFIXES):
            assert "LL4AL needs a ResNet" in _error(["--yaml", path.name, "--al_type", method])
            continue
        cfg = parse_config(["--yaml", path.name, "--al_type", method])
        assert cfg.dataset == path.stem.removesuffix("-minmax") and cfg.al_type == method
        assert (cfg.get("wsl_method") == C.WSL_MINMAX) == path.stem.endswith("-minmax")
        if task != C.TASK_SEGMENTATION:   # the U-Net keeps its dropout for every method (0.2)
            dropout = cfg.classification.head_dropout if task == C.TASK_CLASSIFICATION else cfg.model.backbone_dropout
            assert (dropout > 0) == (method in C.MC_METHODS), method


def test_paper_values_glas() -> None:
    cfg = parse_config(GLAS)
    o, m = cfg.optimizer, cfg.model
    assert (o.lr, o.momentum, o.nesterov, o.weight_decay) == (0.1, 0.9, True, 1e-4)
    assert (o.name_lr_scheduler, o.step_size, o.gamma, o.min_lr) == ("mystep", 100, 0.9, 1e-7)
    assert cfg.max_epochs == 1000 and cfg.batch_size == 20
    assert cfg.scale_seg_u == 0.1 and cfg.knn == 40 and cfg.mcdropout_t == 50
    assert (m.base_width, m.leak, m.num_classes) == (24, 64, 2)
    assert (m.modalities, m.kmax, m.kmin, m.alpha, m.dropout) == (5, 0.1, 0.1, 0.6, 0.1)
    assert cfg.max_al_its == 25
    assert math.isclose(cfg.p_init_samples, 800 / 67) and math.isclose(cfg.p_samples, 200 / 67)
    assert initial_per_class(cfg.p_init_samples, 67, m.num_classes) == 4
    assert round_count(cfg.p_samples, 67) == 2
    assert (cfg.crop_size, cfg.up_scale_small_dim_to, cfg.ratio_scale_patch, cfg.padding_ratio) == \
        (416, 432, 0.9, 0.01)
    assert cfg.pad_eval is True and cfg.seg_threshold == 0.5
    wsl = _cfg("--al_type", "WSL")
    assert wsl.optimizer.lr == 1e-4 and wsl.max_epochs == 1000 and wsl.optimizer.gamma == 0.9


def test_paper_values_cub() -> None:
    cfg = parse_config(CUB)
    o, m = cfg.optimizer, cfg.model
    assert m.num_classes == 200 and cfg.scale_seg_u == 0.001
    assert (m.base_width, m.leak) == (12, 32)
    assert cfg.batch_size == 8 and cfg.max_epochs == 30
    assert (o.lr, o.step_size, o.gamma) == (0.1, 10, 0.95)
    assert cfg.max_al_its == 20
    assert initial_per_class(cfg.p_init_samples, 4794, m.num_classes) == 1
    assert round_count(cfg.p_samples, 4794) == 200
    assert (cfg.crop_size, cfg.up_scale_small_dim_to, cfg.ratio_scale_patch, cfg.padding_ratio) == \
        (416, 432, 0.9, 0.01)
    wsl = parse_config([*CUB, "--al_type", "WSL"])
    assert wsl.optimizer.lr == 0.01 and wsl.max_epochs == 90 and wsl.optimizer.gamma == 0.9
    assert wsl.optimizer.step_size == 10 and wsl.estimate_seg_thres is False
