"""Smoke test of the benchmark suite at its smallest size on the CPU (the suite itself is not a test)."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from al.state import RunStateError
from al.strategies import STRATEGIES, StrategySettings
from bench.frozen import frozen_rows
from bench.knn_speed import fast_pairs, full_matrix_pairs, synthetic_histograms
from bench.measure import Measured, measure
from bench.report import CSV_COLUMNS
from bench.rounds import read_round_state, round_row
from bench.run import main, run_suite
from bench.sizes import SMALL
from bench.strategies import pool_round

CPU = torch.device("cpu")
TINY = dataclasses.replace(SMALL, crop=72, view_hw=(80, 80), batch=2, warmup=1, iterations=2, knn_sizes=(200,),
                           pools=(8,), naive_max_pool=8, passes=2, strategy_pools=(16,))
STATE_V1 = Path(__file__).parent / "fixtures" / "state_v1" / "mc_dropout.json"


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread: on a busy machine, threads waiting on each other make tiny models many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
def test_suite_writes_csv_and_json_with_the_expected_columns(tmp_path: Path) -> None:
    rows, csv_path, json_path = run_suite(("train", "knn"), TINY, CPU, tmp_path, None, ["--only", "train,knn"],
                                          log=lambda _: None)
    assert csv_path == tmp_path / "bench_small_cpu.csv" and json_path.is_file()
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        lines = list(reader)
    assert tuple(reader.fieldnames) == CSV_COLUMNS
    assert [line["item"] for line in lines] == ["train", "train", "knn", "target", "target", "target", "target"]
    pipeline = next(line for line in lines if line["case"] == "pipeline fp32")
    assert float(pipeline["value"]) > 0 and pipeline["reference"] == "model-only" and float(pipeline["ratio"]) > 0
    assert all(line["verdict"] == "n/a (CPU)" for line in lines if line["item"] == "target")
    payload = json.loads(json_path.read_text())
    assert {"date", "device", "torch", "threads", "size"} <= set(payload["meta"])
    assert payload["meta"]["device"] and payload["meta"]["size"] == "small"
    knn = next(row for row in payload["rows"] if row["item"] == "knn")
    assert knn["extra"]["agree"] is True and knn["reference_value"] > 0 and len(rows) == len(payload["rows"])


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("k", [1, 5, 40])
def test_fast_knn_agrees_with_the_full_matrix(k: int) -> None:
    # 10 classes of 30, 3 labelled each: k < 27 needs the counting sweep, k = 40 skips it.
    hists, labels, labelled = synthetic_histograms(300, seed=k)
    fast, z = fast_pairs(hists, labels, labelled, k, CPU)
    ref, ref_z = full_matrix_pairs(hists, labels, labelled, k, CPU)
    assert fast == ref and fast
    for c in ref_z:
        torch.testing.assert_close(z[c], ref_z[c], rtol=1e-9, atol=0.0)
    if k == 1:
        assert len(fast) < int((~labelled).sum())   # some samples are blocked by their unlabelled neighbours


def test_measure_sees_a_large_host_allocation() -> None:
    with measure(CPU) as measured:
        block = torch.ones(50_000_000)      # 200 MB, touched
        del block
    if measured.host_peak_mb is None:
        pytest.skip("the host peak needs Linux /proc/self/clear_refs")
    assert measured.host_peak_mb > 150 and measured.seconds > 0


def test_bad_item_is_one_line_and_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--only", "train,bogus"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "bogus" in err and len(err.splitlines()) == 1


@pytest.mark.usefixtures("one_thread")
def test_score_item_runs_the_strategy_scorers_and_the_naive_reference(tmp_path: Path) -> None:
    rows, _, _ = run_suite(("score",), TINY, CPU, tmp_path, None, ["--only", "score"], log=lambda _: None)
    score = {row.case: row for row in rows if row.item == "score"}
    assert set(score) == {"entropy n=8", "mc T=2 n=8", "mc naive T=2 n=8"}
    assert all(row.value is not None and row.value > 0 for row in score.values())
    fast = score["mc T=2 n=8"]
    assert fast.reference == "naive" and fast.ratio == pytest.approx(fast.value / score["mc naive T=2 n=8"].value)
    assert fast.extra["scores_finite"] is True


@pytest.mark.usefixtures("one_thread")
def test_strategies_item_writes_one_row_per_registered_strategy(tmp_path: Path) -> None:
    _, csv_path, json_path = run_suite(("strategies",), TINY, CPU, tmp_path, None, ["--only", "strategies"],
                                       log=lambda _: None)
    with csv_path.open(newline="") as handle:
        rows = [line for line in csv.DictReader(handle) if line["item"] == "strategies"]
    lines = [line for line in rows if len(line["case"].split()) == 2]
    assert [line["case"] for line in lines] == [f"{name} n=16" for name in STRATEGIES]
    # Region-level annotation: superpixels of the pool by each method, then Entropy per region vs per image.
    regions = {line["case"]: line for line in rows if len(line["case"].split()) == 3}
    assert set(regions) == {"superpixels slic n=16", "superpixels watershed n=16", "Entropy images n=16",
                            "Entropy regions n=16"}
    assert all(float(line["value"]) > 0 for line in regions.values())
    assert float(regions["Entropy images n=16"]["ratio"]) == pytest.approx(1.0)
    assert all(float(line["value"]) > 0 and line["metric"] == "s" for line in lines)
    assert all(line["reference"] == "Entropy" and float(line["ratio"]) > 0 for line in lines)
    measured = {row["case"].split()[0]: row for row in json.loads(json_path.read_text())["rows"]
                if row["item"] == "strategies" and len(row["case"].split()) == 2}
    entropy = measured["Entropy"]
    assert entropy["ratio"] == pytest.approx(1.0) and entropy["reference_value"] == pytest.approx(entropy["value"])
    for row in measured.values():
        assert row["ratio"] == pytest.approx(entropy["value"] / row["value"])
    # The pick is the round's: per_class of each class, among the candidates, never a labelled image.
    fake_pool = SimpleNamespace(ids=[f"pool_{i:06d}" for i in range(16)],
                                labels=np.arange(16, dtype=np.int64) % TINY.num_classes)
    rnd = pool_round(fake_pool, 16, seed=0)
    candidates = {fake_pool.ids[p] for p in rnd.candidates}
    assert rnd.per_class >= 1 and len(rnd.labelled) >= 2 * TINY.num_classes
    for name, row in measured.items():
        extra = row["extra"]
        assert extra["candidates"] == len(rnd.candidates) and extra["labelled"] == len(rnd.labelled), name
        assert len(extra["selected"]) == len(set(extra["selected"])) == rnd.per_class * TINY.num_classes, name
        assert set(extra["selected"]) <= candidates, name
        assert extra["gather_s"] + extra["select_s"] <= row["value"] and extra["images_per_s"] > 0, name
        if name != "Random":
            assert extra["scored"] == len(rnd.candidates) and extra["scores_finite"] is True, name
    # Every model-based strategy gathered evidence; Ensemble scored with all its members.
    assert measured["Random"]["extra"]["evidence_mb"] == 0
    assert all(measured[name]["extra"]["evidence_mb"] > 0 for name in measured if name != "Random")
    assert measured["Ensemble"]["extra"]["models"] == StrategySettings().ensemble_size
    assert "scoring only" in measured["Ensemble"]["note"]
    assert all(measured[name]["extra"]["models"] == 1 for name in measured if name != "Ensemble")


def test_round_row_reads_the_round_state(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    shutil.copy(STATE_V1, path)
    state = read_round_state(path)
    payload = json.loads(STATE_V1.read_text())
    row = round_row("synthetic", "MC_Dropout", state, Measured(seconds=5.0))
    assert row.value == pytest.approx(sum(payload["timings"].values()))
    assert row.extra["n_labelled"] == len(payload["labelled"]) and row.extra["epochs"] == 2
    assert row.extra["test_dice"] == payload["metrics"]["test"]["dice_idx"]
    assert "score 1.85" in row.note and "pseudo_label" not in row.note
    path.write_text(json.dumps({**payload, "round": "0"}))
    with pytest.raises(RunStateError, match="round"):
        read_round_state(path)


def test_the_frozen_item_compares_the_cache_on_and_off(tmp_path: Path) -> None:
    rows = frozen_rows(SMALL, torch.device("cpu"), tmp_path, None)
    assert [r.case for r in rows] == ["synthetic validation per epoch, cache off",
                                      "synthetic validation per epoch, cache on",
                                      "synthetic MC dropout T=10, 20 pool images, cache on"]
    assert rows[1].extra["identical"] and rows[1].extra["cache_mb"] > 0 and rows[1].reference_value == rows[0].value
    assert all(r.value is not None and r.value > 0 for r in rows)
