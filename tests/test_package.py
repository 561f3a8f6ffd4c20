"""The installable package: the wheel's content, its console scripts in a fresh virtual environment, and where
relative paths lead in a source checkout and in an installed copy.

The wheel is built offline from a copy of the repository (pip's in-tree build leaves build/ and *.egg-info
there, not here) and installed with --no-deps into a venv whose .pth file shows it this environment's
torch, numpy, ...; its commands then run from a folder outside the repository.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import al_commands
import gen_configs
import parseit

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml needs Python >= 3.11 or tomli")

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
# What the copy that is built leaves out: environments, outputs and caches (the wheel would not hold them anyway).
NOT_COPIED = shutil.ignore_patterns(".venv", ".git", "exps", "datasets", "cache", "bench_results", "paper",
                                    "ph2_data", ".whl", ".label-studio*", "__pycache__", ".pytest_cache",
                                    ".ruff_cache", "build", "dist", "*.egg-info")
TINY_STAGE1 = ["--yaml", "synthetic.yaml", "--al_type", "WSL", "--max_epochs", "1", "--batch_size", "8",
               "--progress", "false", "--device", "cpu"]


@dataclass(frozen=True)
class Installed:
    wheel: Path
    bin: Path
    site_packages: Path


def _pip(*args: str) -> None:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1"}
    done = subprocess.run([sys.executable, "-m", "pip", *args], check=False, capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    for name in ("pip", "setuptools"):   # found, not imported (importing setuptools here would patch distutils)
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed: the package is built offline with pip and setuptools")
    root = tmp_path_factory.mktemp("package")
    source = root / "source"
    shutil.copytree(REPO, source, symlinks=True, ignore=NOT_COPIED)
    _pip("wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir", "-w", str(root / "wheel"), str(source))
    wheel = next((root / "wheel").glob("joint_al-*.whl"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    ours = {str(Path(sysconfig.get_paths()[key]).resolve()) for key in ("purelib", "platlib")}
    (site / "project_dependencies.pth").write_text("".join(f"{path}\n" for path in sorted(ours)))
    _pip("--python", str(python), "install", "--no-deps", "--no-cache-dir", str(wheel))
    return Installed(wheel, venv / "bin", site)


def _tree(root: Path) -> set[str]:
    """Every file under root but byte code (which Python may refresh)."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.suffix != ".pyc"}


def test_wheel_holds_the_tree_under_one_folder_with_configs_and_folds(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"joint_al", f"joint_al-{PYPROJECT['project']['version']}.dist-info"}
    shipped = {name.removeprefix("joint_al/") for name in names if name.startswith("joint_al/")}
    assert {f"config_yaml/{p.name}" for p in (REPO / "config_yaml").glob("*.yaml")} <= shipped
    assert {str(p.relative_to(REPO)) for p in (REPO / "folds").rglob("*") if p.is_file()} <= shipped
    assert {"main.py", "al_commands.py", "parseit.py", "al/strategies/__init__.py", "tasks/joint/__init__.py",
            "LICENSE", "CITATION.cff", "dependencies/requirements.txt"} <= shipped
    assert ("predict.py" in shipped) == (REPO / "predict.py").is_file()
    # pyproject.toml marks a source checkout (parseit.SOURCE_CHECKOUT): an installed copy must not have it.
    assert not any(name.startswith(("tests/", "exps/", "datasets/", "build/")) or name == "pyproject.toml"
                   for name in shipped)
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(installed.wheel).read(entry_points).decode()
    for command, target in PYPROJECT["project"]["scripts"].items():
        assert f"{command} = {target}" in text


def test_installed_commands_run_from_any_folder_and_write_there(installed: Installed, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    before = _tree(installed.site_packages)
    helped = subprocess.run([str(installed.bin / "al-run"), "--help"], check=False, cwd=tmp_path, capture_output=True,
                            text=True, env=env, timeout=60)
    assert helped.returncode == 0 and "--yaml <dataset>.yaml" in helped.stdout
    bad = subprocess.run([str(installed.bin / "al-run"), "--yaml", "nope.yaml"], check=False, cwd=tmp_path, capture_output=True,
                         text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "synthetic" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    # Stage 1 on the synthetic set: the shipped configuration and folds, the set generated under the working folder.
    run = subprocess.run([str(installed.bin / "al-run"), *TINY_STAGE1], check=False, cwd=tmp_path, capture_output=True,
                         text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "datasets" / "synthetic" / "labels.csv").is_file()
    assert (tmp_path / "exps" / "synthetic" / "split_0-fold_0" / "theta0" / "seed_0.pt").is_file()
    assert (tmp_path / "exps" / "synthetic" / "split_0-fold_0" / "WSL-seed_0" / "round_000" / "state.json").is_file()
    assert _tree(installed.site_packages) == before


def test_each_console_script_runs_a_script_main(monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[str] = []
    monkeypatch.setattr(al_commands, "_script", lambda module: called.append(module) or 0)
    monkeypatch.setattr(sys, "argv", ["al-command"])
    for command, target in PYPROJECT["project"]["scripts"].items():
        module, _, function = target.partition(":")
        assert module == "joint_al.al_commands" and command.startswith("al-")
        assert getattr(al_commands, function)() == 0
    assert len(called) == len(PYPROJECT["project"]["scripts"])
    for module in called:
        if module == "predict" and not (REPO / "predict.py").is_file():
            continue
        assert callable(importlib.import_module(module).main), module


def test_package_list_covers_every_package_of_the_tree() -> None:
    settings = PYPROJECT["tool"]["setuptools"]
    assert settings["package-dir"] == {"joint_al": "."}
    listed = set(settings["packages"])
    found = {"joint_al." + ".".join(p.parent.relative_to(REPO).parts) for p in REPO.rglob("__init__.py")
             if p.parent.relative_to(REPO).parts[0] not in ("tests", "build")
             and not p.parent.relative_to(REPO).parts[0].startswith(".")}   # .venv, .label-studio-venv
    assert found | {"joint_al"} == listed


def test_dependency_ranges_hold_the_pins() -> None:
    pins = dict(line.split("==") for line in (REPO / "dependencies" / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    project = PYPROJECT["project"]
    extras = project["optional-dependencies"]
    ranges = {spec.split(">=")[0].lower(): spec for spec in [*project["dependencies"], *extras["crf"], *extras["test"],
                                                            *extras["tensorboard"]]}
    assert {name.lower() for name in pins} <= set(ranges)
    assert {spec.split(">=")[0].lower() for spec in project["dependencies"]} <= {name.lower() for name in pins}
    for name, pinned in pins.items():
        low, _, high = ranges[name.lower()].split(">=")[1].partition(",<")
        version = tuple(int(part) for part in pinned.split("."))
        assert tuple(int(part) for part in low.split(".")) <= version, name
        assert not high or version < tuple(int(part) for part in high.split(".")), name
    assert project["requires-python"] == ">=3.10" and "pytest" not in str(project["dependencies"])


def test_citation_names_the_paper_and_the_software() -> None:
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software" and cff["license"] == "MIT"
    paper = cff["preferred-citation"]
    assert paper["type"] == "conference-paper" and paper["year"] == 2021
    assert (paper["start"], paper["end"]) == (3338, 3347) and "WACV" in paper["conference"]["name"]
    assert [a["family-names"] for a in paper["authors"]] == ["Belharbi", "Ben Ayed", "McCaffrey", "Granger"]
    assert "MIT License" in (REPO / "LICENSE").read_text(encoding="utf-8")


def test_relative_paths_lead_to_the_repository_in_a_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert parseit.SOURCE_CHECKOUT
    assert parseit.resolve_path("exps") == REPO / "exps" == parseit.resource_path("exps")
    assert parseit.script_path("main.py") == "main.py"
    assert parseit.yaml_path("config_yaml/glas.yaml") == REPO / "config_yaml" / "glas.yaml"


def test_relative_paths_lead_to_the_working_folder_when_installed(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(parseit, "SOURCE_CHECKOUT", False)
    monkeypatch.setattr(gen_configs, "SOURCE_CHECKOUT", False)
    assert parseit.resolve_path("exps") == tmp_path / "exps"
    assert parseit.resolve_path("/abs/exps") == Path("/abs/exps")
    # Shipped folds are read from the package until the working folder has the dataset's own.
    assert parseit.resource_path("folds", "synthetic") == REPO / "folds"
    (tmp_path / "folds" / "synthetic").mkdir(parents=True)
    assert parseit.resource_path("folds", "synthetic") == tmp_path / "folds"
    assert parseit.resource_path("folds", "ph2") == REPO / "folds"
    assert parseit.yaml_path("synthetic.yaml") == REPO / "config_yaml" / "synthetic.yaml"
    assert parseit.yaml_path("config_yaml/glas.yaml") == REPO / "config_yaml" / "glas.yaml"
    (tmp_path / "mine.yaml").write_text("")
    assert parseit.yaml_path("mine.yaml") == Path("mine.yaml")
    assert parseit.script_path("main.py") == str(REPO / "main.py")
    assert gen_configs.default_python() == sys.executable
    assert gen_configs.script_text([], "t").splitlines()[5] == f"cd {tmp_path}"
