"""study.py with the local backend on the synthetic set (CPU, tiny settings): the jobs and their
dependencies, a whole study that resumes, a failing WSL that cancels its dependants, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from synthetic_runs import TINY, states

import constants as C
from parseit import REPO_ROOT
from studies.plan import plan

EXTRAS = [arg for arg in TINY if arg not in ("--yaml", "synthetic.yaml")]


def _study(tmp: Path, *args: str, extras: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "study.py", *args, "--datasets", "synthetic", "--seeds", "0", "1",
                           "--rounds", "2", "--jobs", "2", "--", *EXTRAS, "--exp_root", str(tmp / "exps"), *extras],
                          check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)


def test_the_plan_puts_each_seed_s_wsl_before_its_stage_2_methods(tmp_path: Path) -> None:
    jobs = plan(["synthetic", "digits"], [C.RANDOM, C.FULL_SUP], [0, 1], 3, ["--exp_root", str(tmp_path)])
    by_name = {job.name: job for job in jobs}
    assert set(by_name) == {"synthetic-WSL-seed_0", "synthetic-Random-seed_0", "synthetic-Full_sup-seed_0",
                            "synthetic-WSL-seed_1", "synthetic-Random-seed_1", "synthetic-Full_sup-seed_1",
                            "digits-Random-seed_0", "digits-Full_sup-seed_0", "digits-Random-seed_1",
                            "digits-Full_sup-seed_1"}
    assert by_name["synthetic-Random-seed_1"].after == ("synthetic-WSL-seed_1",)
    assert by_name["digits-Random-seed_0"].after == ()          # no stage 1 outside the joint task
    assert by_name["synthetic-Random-seed_0"].rounds == 3 and by_name["synthetic-Full_sup-seed_0"].rounds == 1
    args = by_name["synthetic-Random-seed_0"].args
    assert args[args.index("--al_it_end") + 1] == "2" and args[args.index("--exp_id") + 1] == "Random-seed_0"
    assert [j.name for j in jobs].index("synthetic-WSL-seed_0") < [j.name for j in jobs].index("synthetic-Random-seed_0")


def test_a_study_runs_every_round_and_resumes_with_nothing_left(tmp_path: Path) -> None:
    done = _study(tmp_path, "--methods", C.RANDOM, C.ENTROPY)
    assert done.returncode == 0, done.stderr[-2000:]
    for run_id in ("Random-seed_0", "Random-seed_1", "Entropy-seed_0", "Entropy-seed_1"):
        assert [s["round"] for s in states(tmp_path / "exps", run_id)] == [0, 1]
    assert "6 jobs: 6 done; 10/10 rounds done" in done.stdout
    first = states(tmp_path / "exps", "Entropy-seed_1")
    again = _study(tmp_path, "--methods", C.RANDOM, C.ENTROPY)
    assert again.returncode == 0 and "(6 already done)" in again.stdout
    assert states(tmp_path / "exps", "Entropy-seed_1") == first
    status = _study(tmp_path, "status", "--methods", C.RANDOM, C.ENTROPY)
    assert status.returncode == 0 and "synthetic-Entropy-seed_1" in status.stdout and "2/2" in status.stdout


def test_a_failing_wsl_cancels_its_dependants_and_status_says_why(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("a file where theta0's folder should be")
    bad = ("--path_pre_trained", str(tmp_path / "not-a-folder" / "theta0.pt"))
    failed = _study(tmp_path, "--methods", C.RANDOM, extras=bad)
    assert failed.returncode == 1
    status = _study(tmp_path, "status", "--methods", C.RANDOM, extras=bad).stdout
    lines = status.splitlines()
    wsl = next(k for k, line in enumerate(lines) if line.startswith("synthetic-WSL-seed_0"))
    assert "failed" in lines[wsl] and lines[wsl + 1].strip()            # the failure's own line under it
    assert any(line.startswith("synthetic-Random-seed_0") and "cancelled" in line for line in lines)
    assert "0/4 rounds done" in status or "0/6 rounds done" in status
    assert not states(tmp_path / "exps", "Random-seed_0")


def test_ctrl_c_stops_every_job_and_the_study_resumes(tmp_path: Path) -> None:
    command = [sys.executable, "study.py", "--datasets", "synthetic", "--methods", C.RANDOM, "--seeds", "0", "1",
               "--rounds", "2", "--jobs", "2", "--", *EXTRAS, "--exp_root", str(tmp_path / "exps")]
    study = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    records = tmp_path / "exps" / "studies" / "study" / "jobs"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(json.loads(p.read_text() or "{}").get("state") == "running"
                                                  for p in records.glob("*.json")):
        time.sleep(0.2)
    study.send_signal(signal.SIGINT)
    _, err = study.communicate(timeout=60)
    assert study.returncode == 130 and "run the same command again to resume" in err
    kept = [json.loads(p.read_text()) for p in records.glob("*.json")]
    pids = [r["pid"] for r in kept if r.get("pid")]
    assert pids and all(r["state"] == "interrupted" for r in kept if r.get("pid"))
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    resumed = _study(tmp_path, "--methods", C.RANDOM)
    assert resumed.returncode == 0 and "4 jobs: 4 done" in resumed.stdout


@pytest.mark.parametrize(("args", "words"), [(("--jobs", "0"), "--jobs must be >= 1"),
                                             (("--methods", "Randm"), "unknown method 'Randm'"),
                                             (("--backend", "pbs"), "invalid choice: 'pbs'")])
def test_bad_arguments_are_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], words: str) -> None:
    done = subprocess.run([sys.executable, "study.py", "--datasets", "synthetic", *args, "--", "--exp_root",
                           str(tmp_path)], check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and words in done.stderr
    assert not (tmp_path / "studies").exists()
