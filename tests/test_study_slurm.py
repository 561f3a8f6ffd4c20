"""study.py --backend slurm against a real single-node Slurm (dependencies/slurm.sh; needs root and
Debian's slurm-wlm and munge, which .ci/run installs): a tiny study to the end, a failing WSL that
cancels its dependants, and a chain killed with scancel that finishes as an uninterrupted one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from synthetic_runs import TINY, states

import constants as C
from parseit import REPO_ROOT

EXTRAS = [arg for arg in TINY if arg not in ("--yaml", "synthetic.yaml")]
WAIT_S = 600
REFERENCE: dict[str, Path] = {}   # the uninterrupted study's exp_root, for the scancel test


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "the test Slurm cluster runs as root"
    missing = [tool for tool in ("slurmctld", "slurmd", "munged", "sbatch") if shutil.which(tool) is None]
    return f"{', '.join(missing)} not installed (apt-get install slurm-wlm munge)" if missing else None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reason = _unavailable()
    if reason:
        pytest.skip(f"no Slurm: {reason}")
    folder = tmp_path_factory.mktemp("slurm")
    script = REPO_ROOT / "dependencies" / "slurm.sh"
    started = subprocess.run(["bash", str(script), "start", str(folder)], capture_output=True, text=True,
                             timeout=120, check=False)
    if started.returncode != 0:
        pytest.skip(f"the Slurm test cluster did not start: {started.stderr.strip()[-300:]}")
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(folder / "etc" / "slurm.conf")
    try:
        yield folder
    finally:
        subprocess.run(["bash", str(script), "stop", str(folder)], capture_output=True, timeout=120, check=False)
        if before is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = before


def _study(exp_root: Path, *args: str, methods: tuple[str, ...] = (C.RANDOM, C.ENTROPY),
           extras: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    backend = () if args and args[0] == "status" else ("--backend", "slurm", "--gpus_per_job", "0",
                                                        "--cpus_per_job", "1", "--per_gpu", "1")
    return subprocess.run([sys.executable, "study.py", *args, *backend, "--datasets", "synthetic", "--methods",
                           *methods, "--seeds", "0", "1", "--rounds", "2", "--", *EXTRAS, "--exp_root",
                           str(exp_root), *extras], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          check=False)


def _queue_empty() -> bool:
    out = subprocess.run(["squeue", "-h"], capture_output=True, text=True, timeout=30, check=False).stdout
    return not out.strip()


def _wait_for_the_queue() -> None:
    deadline = time.monotonic() + WAIT_S
    while not _queue_empty():
        assert time.monotonic() < deadline, "the study's Slurm jobs did not end in time"
        time.sleep(1.0)


def test_a_study_runs_to_the_end_on_slurm(cluster: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    exp_root = tmp_path_factory.mktemp("whole") / "exps"
    submitted = _study(exp_root)
    assert submitted.returncode == 0, submitted.stderr[-2000:]
    assert "6 Slurm jobs submitted" in submitted.stdout
    _wait_for_the_queue()
    for run_id in ("Random-seed_0", "Random-seed_1", "Entropy-seed_0", "Entropy-seed_1"):
        assert [s["round"] for s in states(exp_root, run_id)] == [0, 1], run_id
    status = _study(exp_root, "status").stdout
    assert "6 jobs: 6 done; 10/10 rounds done" in status
    again = _study(exp_root)
    assert "none: every round is done" in again.stdout
    REFERENCE["whole"] = exp_root


def test_a_failing_wsl_cancels_its_dependants(cluster: Path, tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("a file where theta0's folder should be")
    bad = ("--path_pre_trained", str(tmp_path / "not-a-folder" / "theta0.pt"))
    submitted = _study(tmp_path / "exps", methods=(C.RANDOM,), extras=bad)
    assert submitted.returncode == 0, submitted.stderr[-2000:]
    _wait_for_the_queue()
    lines = _study(tmp_path / "exps", "status", methods=(C.RANDOM,), extras=bad).stdout.splitlines()
    wsl = next(k for k, line in enumerate(lines) if line.startswith("synthetic-WSL-seed_0"))
    assert "failed" in lines[wsl] and lines[wsl + 1].strip()
    assert any(line.startswith("synthetic-Random-seed_0") and "cancelled" in line for line in lines)
    assert not states(tmp_path / "exps", "Random-seed_0")


def test_a_chain_killed_with_scancel_finishes_as_an_uninterrupted_one(cluster: Path, tmp_path: Path) -> None:
    exp_root = tmp_path / "exps"
    assert _study(exp_root, methods=(C.RANDOM,)).returncode == 0
    record = exp_root / "studies" / "study" / "jobs" / "synthetic-Random-seed_0.json"
    deadline = time.monotonic() + WAIT_S
    while json.loads(record.read_text()).get("state") != "running":   # the chain itself has started
        assert time.monotonic() < deadline, "the chain did not start"
        time.sleep(0.2)
    slurm_id = json.loads(record.read_text())["slurm_id"]
    subprocess.run(["scancel", slurm_id], check=True, timeout=30)
    _wait_for_the_queue()
    assert len(states(exp_root, "Random-seed_0")) < 2
    assert _study(exp_root, methods=(C.RANDOM,)).returncode == 0
    _wait_for_the_queue()
    reference = REFERENCE.get("whole")
    if reference is None:
        pytest.skip("the uninterrupted study did not run")
    for run_id in ("Random-seed_0", "Random-seed_1"):   # theta0 records the run folder that wrote it
        ours, whole = ([{k: v for k, v in s.items() if k != "theta0_sha256"} for s in states(root, run_id)]
                       for root in (exp_root, reference))
        assert len(ours) == 2 and ours == whole
