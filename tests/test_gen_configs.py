"""Run scripts: one main.py line per round, the WSL guard, overrides, errors, and one real run."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import constants as C
import gen_configs
from al.state import theta0_path
from parseit import parse_config

REPO = Path(__file__).resolve().parents[1]
GPU = '--cudaid "${1:-0}"'


def calls(text: str) -> list[str]:
    return [line for line in text.splitlines() if " main.py " in line]


def seed_calls(text: str, seed: int) -> list[str]:
    return [line for line in calls(text) if f"--MYSEED {seed} " in line]


def test_one_line_per_round_and_seed() -> None:
    scripts = gen_configs.build_scripts(["synthetic"], list(C.METHODS), [0, 3], 3, [], "py")
    assert len(scripts) == len(C.METHODS) * 3
    for method in C.METHODS:
        per_seed = 1 if method == C.WSL else 2 if method == C.FULL_SUP else 1 + 3
        whole = scripts[f"run-synthetic-{method}.sh"]
        for seed in (0, 3):
            assert len(seed_calls(whole, seed)) == per_seed, method
            single = scripts[f"run-synthetic-{method}-myseed-{seed}.sh"]
            assert calls(single) == seed_calls(whole, seed)
        own = [line for line in calls(whole) if f"--al_type {method} " in line]
        rounds = 1 if method in C.SINGLE_ROUND_METHODS else 3
        assert [line.split("--al_it ")[1].split()[0] for line in own] == [str(r) for _ in (0, 3) for r in range(rounds)]
        assert all(f"--exp_id {method}-seed_" in line for line in own)


def test_chained_rounds_are_one_call_per_run() -> None:
    scripts = gen_configs.build_scripts(["synthetic"], [C.RANDOM, C.FULL_SUP], [0, 2], 3, [], "py", chain=True)
    for seed in (0, 2):
        wsl, random = seed_calls(scripts["run-synthetic-Random.sh"], seed)
        assert wsl.startswith("[ -f ") and "--al_type WSL --al_it 0 --exp_id" in wsl
        assert f"--al_type Random --al_it 0 --al_it_end 2 --exp_id Random-seed_{seed} " in random
        *_, full_sup = seed_calls(scripts["run-synthetic-Full_sup.sh"], seed)
        assert "--al_it 0 --exp_id Full_sup" in full_sup and "--al_it_end" not in full_sup


def test_stage2_blocks_start_with_the_guarded_wsl_call() -> None:
    extras = ["--exp_root", "/data/runs", "--debug_subfolder", "dbg", "--max_epochs", "5"]
    scripts = gen_configs.build_scripts(["synthetic"], [C.RANDOM, C.WSL], [1], 2, extras, "py")
    cfg = parse_config(["--yaml", "synthetic.yaml", "--MYSEED", "1", "--al_type", C.RANDOM, *extras])
    theta0 = theta0_path(cfg)
    assert theta0 == Path("/data/runs/dbg/synthetic/split_0-fold_0/theta0/seed_1.pt")
    first, *rest = calls(scripts["run-synthetic-Random-myseed-1.sh"])
    assert first.startswith(f"[ -f {theta0} ] || time py main.py ")
    assert "--al_type WSL --al_it 0 --exp_id WSL-seed_1" in first
    assert all(line.startswith("time py main.py ") and "--al_type Random" in line for line in rest)
    assert not any(line.startswith("[") for line in calls(scripts["run-synthetic-WSL.sh"]))


def test_gpu_argument_overrides_and_shell_header() -> None:
    extras = ["--max_epochs", "5", "--device", "cpu", "--lr=0.5"]
    text = gen_configs.build_scripts(["synthetic"], [C.ENTROPY], [0], 2, extras, ".venv/bin/python", "v2")[
        "run-synthetic-Entropy.sh"]
    lines = text.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines and f"cd {shlex.quote(str(REPO))}" in lines
    for line in calls(text):
        assert line.endswith(f"{GPU} --max_epochs 5 --device cpu --lr=0.5")
        assert "-seed_0-v2 " in line and ".venv/bin/python main.py --yaml synthetic.yaml" in line
    # The guard's theta0 lies inside the repository: written relative, the script runs from there.
    assert calls(text)[0].startswith("[ -f exps/synthetic/split_0-fold_0/theta0/seed_0.pt ] ||")


def test_default_interpreter(tmp_path: Path) -> None:
    assert gen_configs.default_python(tmp_path) == "python3"
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").write_text("")
    assert gen_configs.default_python(tmp_path) == ".venv/bin/python"


def test_main_writes_executable_scripts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gen_configs.main(["--datasets", "synthetic", "--methods", "Label_prop", "Full_sup", "--seeds", "0", "1",
                      "--out", str(tmp_path), "--python", "python3"])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"run-synthetic-{m}{s}.sh" for m in ("Label_prop", "Full_sup")
                           for s in ("", "-myseed-0", "-myseed-1"))
    assert all(os.access(tmp_path / n, os.X_OK) for n in names)
    printed = capsys.readouterr().out
    assert all(n in printed for n in names)
    # Default rounds: the yaml's max_al_its (10 for synthetic).
    assert len(seed_calls((tmp_path / "run-synthetic-Label_prop.sh").read_text(), 1)) == 1 + 10


@pytest.mark.parametrize("argv, message", [
    (["--datasets", "nope"], "unknown dataset 'nope'"),
    (["--datasets", "generic"], "config file 'generic.yaml' not found"),
    (["--methods", "Random", "Nope"], "unknown method 'Nope'"),
    (["--rounds", "11"], "exceeds max_al_its 10"),
    (["--seeds", "x"], "invalid int value"),
    (["--", "--max_epochs", "zero"], "bad value 'zero' for key 'max_epochs'"),
    (["--", "--no_such_key", "1"], "unknown key 'no_such_key'"),
    (["--", "--MYSEED", "3"], "--MYSEED cannot be passed"),
    (["--exp_tag", "a/b"], "exp_id 'Random-seed_0-a/b'"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                              message: str) -> None:
    out = tmp_path / "out"
    options = ["--datasets", "synthetic", "--methods", "Random", "--seeds", "0", "--out", str(out)]
    with pytest.raises(SystemExit) as exc:
        gen_configs.main(options + argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not out.exists()


def test_generated_script_runs(tmp_path: Path) -> None:
    """One real study: WSL (guarded) then two Random rounds on the synthetic set, through bash."""
    exp_root = tmp_path / "exps"
    gen_configs.main(["--datasets", "synthetic", "--methods", "Random", "--seeds", "0", "--rounds", "2",
                      "--out", str(tmp_path), "--python", sys.executable, "--",
                      "--max_epochs", "1", "--device", "cpu", "--exp_root", str(exp_root), "--progress", "false",
                      "--batch_size", "16", "--estimate_seg_thres", "false"])
    result = subprocess.run(["bash", str(tmp_path / "run-synthetic-Random-myseed-0.sh"), "0"], check=False, cwd=REPO,
                            capture_output=True, text=True, timeout=420)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    fold_dir = exp_root / "synthetic" / "split_0-fold_0"
    assert (fold_dir / "theta0" / "seed_0.pt").is_file()
    assert (fold_dir / "WSL-seed_0" / "round_000" / "state.json").is_file()
    for r in (0, 1):
        assert (fold_dir / "Random-seed_0" / f"round_{r:03d}" / "state.json").is_file()
    assert not (fold_dir / "Random-seed_0" / "round_002").exists()
