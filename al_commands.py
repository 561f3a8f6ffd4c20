"""The console scripts of the installed package: al-run, al-study, al-plot, al-predict, al-folds, al-configs.

The package keeps the repository's layout in one folder of site-packages (joint_al/), whose modules import
each other by their top-level names (`import constants as C`, `from al.state import ...`) as the scripts do
in a checkout. Installing those ~15 generic names (data, models, engine, main...) at the top of site-packages
would clash with other packages, so each command puts the package's folder first on sys.path (in its own
process only) and then calls the script's main(), which reads sys.argv as `python <script>.py` does.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _package_first() -> None:
    """The package's modules win over any top-level module of the same name elsewhere on sys.path."""
    if sys.path[:1] != [str(HERE)]:
        sys.path.insert(0, str(HERE))


def _script(module: str) -> int:
    """Import the script `module` from the package's folder and run its main(); its exit status."""
    _package_first()
    code = importlib.import_module(module).main()
    return code if isinstance(code, int) else 0


def run() -> int:
    """al-run: main.py (one active-learning round per call, or a range of rounds)."""
    if {"--help", "-h"} & set(sys.argv[1:]):
        _package_first()
        from parseit import print_help
        print_help()   # as main.py: answered before torch is imported
        return 0
    return _script("main")


def study() -> int:
    """al-study: study.py (datasets x methods x seeds, each a chain of rounds)."""
    return _script("study")


def plot() -> int:
    """al-plot: plot_active_learning_curves.py (figures and AUC tables of finished runs)."""
    return _script("plot_active_learning_curves")


def predict() -> int:
    """al-predict: predict.py (new images through a finished round's model)."""
    return _script("predict")


def folds() -> int:
    """al-folds: create_folds.py (the train/valid/test folds of a dataset)."""
    return _script("create_folds")


def configs() -> int:
    """al-configs: gen_configs.py (shell scripts that run a whole study)."""
    return _script("gen_configs")
