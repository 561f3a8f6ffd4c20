"""The round states a set of tiny runs writes, kept as fixtures so that a redesign of the code that
runs rounds can be shown to change none of them (same machine, deterministic mode).

    python tests/state_fixtures.py      # rewrites tests/fixtures/states/ with the current code
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import main

FIXTURES = REPO / "tests" / "fixtures" / "states"
JOINT = ["--yaml", "synthetic.yaml", "--max_epochs", "2", "--batch_size", "8", "--progress", "false",
         "--device", "cpu", "--deterministic", "true", "--mcdropout_t", "3", "--knn", "5"]
CLASSIFICATION = ["--yaml", "digits.yaml", "--max_epochs", "3", "--progress", "false", "--device", "cpu",
                  "--deterministic", "true", "--mcdropout_t", "3", "--ensemble_size", "2", "--max_al_its", "3"]
# name -> (base arguments, run arguments); runs are made in this order (WSL first: it writes theta0).
CASES: dict[str, tuple[list[str], list[str]]] = {
    "wsl": (JOINT, ["--al_type", "WSL", "--max_epochs", "1"]),
    "random": (JOINT, ["--al_type", "Random", "--al_it", "0", "--al_it_end", "2"]),
    "entropy": (JOINT, ["--al_type", "Entropy", "--al_it", "0", "--al_it_end", "1"]),
    "mc_dropout": (JOINT, ["--al_type", "MC_Dropout", "--al_it", "0", "--al_it_end", "1"]),
    "ensemble": (JOINT, ["--al_type", "Ensemble", "--ensemble_size", "2", "--al_it", "0"]),
    "label_prop": (JOINT, ["--al_type", "Label_prop", "--al_it", "0", "--al_it_end", "2"]),
    "coreset": (JOINT, ["--al_type", "Coreset", "--al_it", "0", "--al_it_end", "1"]),
    "entropy_regions": (JOINT, ["--al_type", "Entropy", "--annotation_unit", "region", "--al_it", "0",
                                "--al_it_end", "1"]),
    "full_sup": (JOINT, ["--al_type", "Full_sup", "--al_it", "0"]),
    "digits_margin": (CLASSIFICATION, ["--al_type", "Margin", "--al_it", "0", "--al_it_end", "2"]),
    "digits_ensemble": (CLASSIFICATION, ["--al_type", "Ensemble", "--al_it", "0", "--al_it_end", "1"]),
    "digits_ll4al": (CLASSIFICATION, ["--al_type", "LL4AL", "--model", "resnet18", "--max_epochs", "2",
                                      "--ll4al_detach_epoch", "1",
                                      "--al_it", "0", "--al_it_end", "1"]),
    "digits_full_sup": (CLASSIFICATION, ["--al_type", "Full_sup", "--al_it", "0"]),
}


def machine() -> dict[str, str | int]:
    """What the floating-point results depend on besides the code: the CPU and its instruction sets (which
    kernels the math libraries pick), torch and the number of threads."""
    info = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []

    def field(name: str) -> str:
        return next((line.split(":", 1)[1].strip() for line in info if line.startswith(name)), platform.processor())

    flags = hashlib.sha256(" ".join(sorted(field("flags").split())).encode()).hexdigest()[:16]
    return {"cpu": field("model name"), "cpu_flags": flags, "torch": torch.__version__,
            "threads": torch.get_num_threads()}


def run_cases(exp_root: Path) -> dict[str, list[dict]]:
    """Every case's round states, with what depends on the folder and the clock taken out."""
    out = {}
    for name, (base, args) in CASES.items():
        exp_id = f"fixture-{name}"
        main.main([*base, "--exp_root", str(exp_root), "--exp_id", exp_id, *args])
        dataset = "digits" if base is CLASSIFICATION else "synthetic"
        folder = exp_root / dataset / "split_0-fold_0" / exp_id
        states = []
        for path in sorted(folder.glob("round_[0-9][0-9][0-9]/state.json")):
            text = path.read_text().replace(str(exp_root), "<exp_root>")
            states.append(normalised(json.loads(text)))
        out[name] = states
    return out


def normalised(state: dict) -> dict:
    """A state without what depends on the clock or the folder: its timings, and theta0's digest (the file
    records the folder of the run that wrote it)."""
    state = {k: v for k, v in state.items() if k != "timings"}
    if state.get("theta0_sha256"):
        state["theta0_sha256"] = "<sha256 of theta0>"
    return state


def write_machine() -> None:
    (FIXTURES / "machine.json").write_text(json.dumps(machine(), indent=1) + "\n")


def write() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        results = run_cases(Path(tmp))
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name, states in results.items():
        (FIXTURES / f"{name}.json").write_text(json.dumps(states, indent=1, sort_keys=True) + "\n")
    write_machine()
    print(f"wrote {len(results)} cases to {FIXTURES}")


if __name__ == "__main__":
    write()
