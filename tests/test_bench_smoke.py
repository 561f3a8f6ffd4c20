"""Smoke test of the benchmark suite at its smallest size on the CPU (the suite itself is not a test)."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from bench.knn_speed import fast_pairs, full_matrix_pairs, synthetic_histograms
from bench.measure import measure
from bench.report import CSV_COLUMNS
from bench.run import main, run_suite
from bench.sizes import SMALL

CPU = torch.device("cpu")
TINY = dataclasses.replace(SMALL, crop=72, view_hw=(80, 80), batch=2, warmup=1, iterations=2, knn_sizes=(200,))


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
