"""A person as the oracle, through main.py on the synthetic set: the request folder, the wait, the
answers (PNG folder and Label Studio export) and the bad answers refused before anything is written."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic_runs import FOLD, run, states, tree

import constants as C
from al.brush_rle import decode as decode_rle
from al.brush_rle import encode
from data.folds import load_fold
from parseit import resolve_path

FILES = ("--oracle", "files")
REGION = ("--annotation_unit", "region", "--regions_per_image", "8", "--superpixel_method", "watershed")


def _true_mask(sample_id: str) -> np.ndarray:
    record = next(r for r in load_fold(resolve_path("folds"), "synthetic", 0, 0).train if r.id == sample_id)
    grey = np.asarray(Image.open(resolve_path("datasets/synthetic") / record.mask).convert("L"))
    return (grey > 127).astype(np.uint8)


def _picked(request: Path) -> list[str]:
    with open(request / "ranking.csv") as f:
        return [row["id"] for row in csv.DictReader(f) if row["picked"] == "1"]


def _answer_pngs(request: Path, folder: Path | None = None) -> None:
    folder = folder or request / "answers"
    folder.mkdir(parents=True, exist_ok=True)
    for i in _picked(request):
        Image.fromarray(_true_mask(i) * 255).save(folder / f"{i}.png")


def _export(request: Path, path: Path, lead_time: float = 7.5) -> None:
    """A Label Studio JSON export of the request's tasks, annotated with the true masks (brush RLE)."""
    tasks = json.loads((request / "label_studio_tasks.json").read_text())
    exported = []
    for k, task in enumerate(tasks):
        mask = _true_mask(task["data"]["sample_id"])
        result = {"type": "brushlabels", "from_name": "mask", "to_name": "image", "original_width": mask.shape[1],
                  "original_height": mask.shape[0], "value": {"format": "rle", "rle": encode(mask),
                                                              "brushlabels": ["foreground"]}}
        exported.append({"id": 10 + k, "data": task["data"],
                         "annotations": [{"id": 100 + k, "result": [result], "lead_time": lead_time,
                                          "was_cancelled": False}]})
    path.write_text(json.dumps(exported))


def _without_provenance(rounds: list[dict]) -> list[dict]:
    return [{k: v for k, v in s.items() if k not in ("annotations", "annotation_seconds")} for s in rounds]


@pytest.fixture(scope="module")
def exp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("person")
    run(root, "--al_type", "WSL", "--MYSEED", "0", "--max_epochs", "1")
    run(root, "--al_type", "Entropy", "--al_it", "0", "--al_it_end", "2", "--exp_id", "simulated")
    return root


def _until_done(root: Path, exp_id: str, answer, *args: str) -> list[int]:
    """Call the run as a polling script would until round 2 is done; the exit codes it saw."""
    codes = []
    for _ in range(6):
        try:
            run(root, "--al_type", "Entropy", "--al_it", "0", "--al_it_end", "2", "--exp_id", exp_id, *FILES, *args)
            codes.append(0)
            return codes
        except SystemExit as exit_:
            codes.append(exit_.code)
            assert exit_.code == C.EXIT_WAITING
        folder = root / FOLD / exp_id
        done = sorted(folder.glob("round_[0-9][0-9][0-9]"))
        answer(done[-1] / "to_annotate" if done else folder / "initial" / "to_annotate")
    raise AssertionError(f"run {exp_id} did not finish: exit codes {codes}")


def test_png_answers_from_the_true_masks_give_the_simulated_rounds(exp_root: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    codes = _until_done(exp_root, "pngs", _answer_pngs)
    assert codes == [3, 3, 3, 0]  # L_0, then the picks of rounds 0 and 1
    out = capsys.readouterr().out
    assert "waits for 6 masks from a person" in out and "initial/to_annotate" in out
    person, simulated = states(exp_root, "pngs"), states(exp_root, "simulated")
    assert _without_provenance(person) == _without_provenance(simulated)
    assert set(person[0]["annotations"]) == set(person[0]["labelled"])
    assert set(person[1]["annotations"]) == set(simulated[0]["selected"])
    assert all(a["source"] == C.SOURCE_FILE and a["reference"].endswith(f"{i}.png")
               for s in person for i, a in s["annotations"].items())
    assert all(a["source"] == C.SOURCE_SIMULATED for s in simulated for a in s["annotations"].values())
    assert [s["annotation_seconds"] for s in person] == [None, None, None]
    kept = exp_root / FOLD / "pngs" / "round_001" / "annotations"
    assert sorted(p.stem for p in kept.glob("*.png")) == sorted(simulated[0]["selected"])


def test_label_studio_export_gives_the_simulated_rounds_and_records_time(exp_root: Path, tmp_path: Path) -> None:
    exports = []

    def answer(request: Path) -> None:
        path = tmp_path / f"export_{len(exports)}.json"
        _export(request, path)
        exports.append(path)

    # One export per round, named on the command line as a user would (it answers the call's first round).
    codes = []
    for k in range(4):
        args = ("--oracle_answers", str(exports[-1])) if exports else ()
        try:
            run(exp_root, "--al_type", "Entropy", "--al_it", "0", "--al_it_end", "2", "--exp_id", "studio", *FILES,
                *args)
            codes.append(0)
            break
        except SystemExit as exit_:
            codes.append(exit_.code)
        folder = exp_root / FOLD / "studio"
        done = sorted(folder.glob("round_[0-9][0-9][0-9]"))
        answer(done[-1] / "to_annotate" if done else folder / "initial" / "to_annotate")
    person, simulated = states(exp_root, "studio"), states(exp_root, "simulated")
    assert codes == [3, 3, 3, 0] and _without_provenance(person) == _without_provenance(simulated)
    assert all(a["source"] == C.SOURCE_LABEL_STUDIO and a["reference"].startswith("task ") and a["lead_time"] == 7.5
               for s in person for a in s["annotations"].values())
    assert [s["annotation_seconds"] for s in person] == [6 * 7.5, 9 * 7.5, 12 * 7.5]


def test_the_request_holds_the_ranking_the_tasks_and_the_pictures(exp_root: Path) -> None:
    request = exp_root / FOLD / "pngs" / "round_000" / "to_annotate"
    state = states(exp_root, "pngs")[0]
    with open(request / "ranking.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows[:3]] == sorted(state["selected"], key=lambda i: -state["scores"][i])
    assert len(rows) == 75 - 6 and {r["strategy"] for r in rows} == {"Entropy"}
    assert [float(r["score"]) for r in rows[3:]] == sorted((float(r["score"]) for r in rows[3:]), reverse=True)
    assert all(int(r["rank"]) == k + 1 for k, r in enumerate(rows))
    tasks = json.loads((request / "label_studio_tasks.json").read_text())
    assert [t["data"]["sample_id"] for t in tasks] == [r["id"] for r in rows[:3]]
    for task in tasks:
        i = task["data"]["sample_id"]
        assert task["data"]["image"] == f"/data/local-files/?d={FOLD}/pngs/round_000/to_annotate/images/{i}.png"
        (result,) = task["predictions"][0]["result"]
        assert task["predictions"][0]["model_version"] == "pngs: round 0 picks for round 1"   # run and round
        predicted = np.asarray(Image.open(request / "predictions" / f"{i}.png")) > 0
        rle = decode_rle(result["value"]["rle"], result["original_height"], result["original_width"])
        assert np.array_equal(rle > 127, predicted)
        for kind in ("images", "heatmaps"):
            assert Image.open(request / kind / f"{i}.png").size == predicted.shape[::-1]
    assert "<BrushLabels" in (request / "label_studio_config.xml").read_text()
    page = (request / "index.html").read_text()
    assert page.count('class="card"') == 3 and page.count("data:image/png;base64,") == 9
    initial = exp_root / FOLD / "pngs" / "initial" / "to_annotate"
    assert sorted(_picked(initial)) == sorted(state["labelled"])
    with open(initial / "ranking.csv") as f:   # a random draw: the drawn images only, none with a score
        rows = list(csv.DictReader(f))
    assert sorted(r["id"] for r in rows) == sorted(state["labelled"]) and all(r["score"] == "" for r in rows)
    assert "predictions" not in json.loads((initial / "label_studio_tasks.json").read_text())[0]


def test_region_answers_fill_in_the_picked_regions_only(exp_root: Path) -> None:
    run(exp_root, "--al_type", "Entropy", "--al_it", "0", "--al_it_end", "2", "--exp_id", "regions-simulated",
        *REGION)
    _until_done(exp_root, "regions-person", _answer_pngs, *REGION)
    person, simulated = states(exp_root, "regions-person"), states(exp_root, "regions-simulated")
    assert _without_provenance(person) == _without_provenance(simulated)
    assert set(person[1]["annotations"]) == set(simulated[0]["selected_regions"])
    assert (exp_root / FOLD / "regions-person" / "round_000" / "to_annotate" / "regions").is_dir()


def _fresh_run(exp_root: Path, exp_id: str) -> Path:
    """A run waiting for round 1's answers (L_0 answered, round 0 done)."""
    folder = exp_root / FOLD / exp_id
    if not (folder / "round_000").is_dir():
        shutil.rmtree(folder, ignore_errors=True)
        _call(exp_root, exp_id, 0)
        _answer_pngs(folder / "initial" / "to_annotate")
        assert _call(exp_root, exp_id, 0) == 0
    return folder


def _call(exp_root: Path, exp_id: str, r: int, *args: str) -> int | str | None:
    try:
        run(exp_root, "--al_type", "Entropy", "--al_it", str(r), "--exp_id", exp_id, *FILES, *args)
    except SystemExit as exit_:
        return exit_.code
    return 0


def _corrupt(folder: Path, ids: list[str]) -> None:
    (folder / f"{ids[0]}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")


def _grey(folder: Path, ids: list[str]) -> None:
    mask = np.asarray(Image.open(folder / f"{ids[0]}.png"))
    Image.fromarray((mask // 2).astype(np.uint8)).save(folder / f"{ids[0]}.png")


def _resize(folder: Path, ids: list[str]) -> None:
    Image.open(folder / f"{ids[0]}.png").resize((17, 19)).save(folder / f"{ids[0]}.png")


@pytest.mark.parametrize(("spoil", "words"), [
    (lambda folder, ids: (folder / f"{ids[0]}.png").unlink(), "missing <id>.png"),
    (lambda folder, ids: shutil.copy(folder / f"{ids[0]}.png", folder / "disc_9999.png"), "not asked for"),
    (_resize, "size differs from the image's"),
    (_grey, "non-binary"),
    (_corrupt, "not a readable PNG"),
])
def test_bad_png_answers_are_one_line_exit_2_and_nothing_written(exp_root: Path, capsys: pytest.CaptureFixture,
                                                                 spoil, words: str) -> None:
    folder = _fresh_run(exp_root, "bad-png")
    request = folder / "round_000" / "to_annotate"
    answers = request / "answers"
    shutil.rmtree(answers)
    _answer_pngs(request)
    ids = sorted(_picked(request))
    spoil(answers, ids)
    capsys.readouterr()
    before = tree(folder)
    assert _call(exp_root, "bad-png", 1) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and "Traceback" not in err[0]
    assert (ids[0] in err[0]) or "disc_9999" in err[0]
    assert tree(folder) == before


@pytest.mark.parametrize(("content", "words"), [
    ("{not json", "invalid JSON"),
    ('{"tasks": []}', "expected a list of tasks"),
    ('[{"id": 1, "data": {"image": "x"}, "annotations": []}]', "no data.sample_id"),
    ("BRUSH", "RLE stream"),
    ("SIZE", "size differs"),
    ("EXTRA", "not asked for"),
])
def test_bad_label_studio_exports_are_one_line_exit_2_and_nothing_written(
        exp_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture, content: str, words: str) -> None:
    folder = _fresh_run(exp_root, "bad-export")
    path = tmp_path / "export.json"
    if content in ("BRUSH", "SIZE", "EXTRA"):
        _export(folder / "round_000" / "to_annotate", path)
        tasks = json.loads(path.read_text())
        result = tasks[0]["annotations"][0]["result"][0]
        if content == "BRUSH":
            result["value"]["rle"] = result["value"]["rle"][:5]
        elif content == "SIZE":
            result["original_width"] += 1
        else:
            tasks.append({"id": 99, "data": {"sample_id": "disc_9999"}, "annotations": [{"id": 1, "result": []}]})
        path.write_text(json.dumps(tasks))
    else:
        path.write_text(content)
    capsys.readouterr()
    before = tree(folder)
    assert _call(exp_root, "bad-export", 1, "--oracle_answers", str(path)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and "Traceback" not in err[0]
    assert tree(folder) == before


def test_waiting_writes_nothing_but_the_request_and_says_where(exp_root: Path, capsys: pytest.CaptureFixture) -> None:
    folder = _fresh_run(exp_root, "waiting")
    capsys.readouterr()
    before = tree(folder)
    assert _call(exp_root, "waiting", 1) == C.EXIT_WAITING
    out = capsys.readouterr().out
    assert "round 1 waits for 3 masks" in out and str(folder / "round_000" / "to_annotate" / "answers") in out
    assert tree(folder) == before
    (folder / "empty").mkdir(exist_ok=True)   # an answers folder with nothing in it yet: still waiting
    assert _call(exp_root, "waiting", 1, "--oracle_answers", str(folder / "empty")) == C.EXIT_WAITING
    capsys.readouterr()
    before = tree(folder)   # a mistyped path is not "waiting" (a polling loop would never end): one line, exit 2
    assert _call(exp_root, "waiting", 1, "--oracle_answers", str(folder / "nowhere")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--oracle_answers {folder / 'nowhere'} does not exist" in err[0]
    assert tree(folder) == before


def test_an_empty_mask_is_refused_until_the_image_is_declared_without_foreground(
        exp_root: Path, capsys: pytest.CaptureFixture) -> None:
    folder = _fresh_run(exp_root, "empty-answer")
    request = folder / "round_000" / "to_annotate"
    _answer_pngs(request)
    ids = sorted(_picked(request))
    Image.fromarray(np.zeros_like(_true_mask(ids[0]))).save(request / "answers" / f"{ids[0]}.png")
    capsys.readouterr()
    before = tree(folder)
    assert _call(exp_root, "empty-answer", 1) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "empty (nothing drawn" in err[0] and f"({ids[0]})" in err[0]
    assert tree(folder) == before and (folder / "lock").read_text() == ""   # no stale pid either
    (request / "answers" / "no_foreground.txt").write_text(f"{ids[0]}\n")
    assert _call(exp_root, "empty-answer", 1) == 0
    kept = np.asarray(Image.open(folder / "round_001" / "annotations" / f"{ids[0]}.png"))
    assert kept.shape == _true_mask(ids[0]).shape and not kept.any()


def test_answers_to_a_finished_round_are_refused_and_redo_round_moves_the_old_rounds_aside(
        exp_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = _fresh_run(exp_root, "redo")
    _answer_pngs(folder / "round_000" / "to_annotate")
    assert _call(exp_root, "redo", 1) == 0
    _answer_pngs(folder / "round_001" / "to_annotate")
    assert _call(exp_root, "redo", 2) == 0
    old = {r: json.loads((folder / f"round_00{r}" / "state.json").read_text()) for r in (1, 2)}
    corrected = tmp_path / "corrected"
    shutil.copytree(folder / "round_000" / "to_annotate" / "answers", corrected)
    first = min(p.stem for p in corrected.glob("*.png"))
    fixed = _true_mask(first)
    fixed[: fixed.shape[0] // 2] = 0
    assert fixed.any()
    Image.fromarray(fixed * 255).save(corrected / f"{first}.png")
    capsys.readouterr()
    before = tree(folder)
    assert _call(exp_root, "redo", 1, "--oracle_answers", str(corrected)) == 2   # not ignored in silence
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already finished" in err[0] and "--redo_round 1" in err[0]
    assert _call(exp_root, "redo", 1, "--redo_round", "2") == 2                   # redo_round must be al_it
    assert "pass --al_it 2 too" in capsys.readouterr().err
    (corrected / "stray.png").write_bytes(b"not a png")                          # bad answers: nothing moves
    assert _call(exp_root, "redo", 1, "--oracle_answers", str(corrected), "--redo_round", "1") == 2
    assert tree(folder) == before
    (corrected / "stray.png").unlink()
    assert _call(exp_root, "redo", 1, "--oracle_answers", str(corrected), "--redo_round", "1") == 0
    (archive,) = (folder / "superseded").iterdir()
    assert sorted(p.name for p in archive.iterdir()) == ["round_001", "round_002"]
    for r in (1, 2):   # the old rounds, as they were
        assert json.loads((archive / f"round_00{r}" / "state.json").read_text()) == old[r]
    assert (archive / "round_001" / "annotations" / f"{first}.png").is_file()
    assert not (folder / "round_002").exists()
    redone = json.loads((folder / "round_001" / "state.json").read_text())
    assert redone["annotations"][first]["reference"] == str(corrected / f"{first}.png")
    kept = np.asarray(Image.open(folder / "round_001" / "annotations" / f"{first}.png")) > 0
    assert np.array_equal(kept, fixed > 0)


def test_a_round_that_lost_its_state_or_was_deleted_under_later_rounds_is_refused_until_redone(
        exp_root: Path, capsys: pytest.CaptureFixture) -> None:
    def call(*args: str) -> int | str | None:
        try:
            run(exp_root, "--al_type", "Entropy", "--exp_id", "lost", *args)
        except SystemExit as exit_:
            return exit_.code
        return 0

    folder = exp_root / FOLD / "lost"
    assert call("--al_it", "0", "--al_it_end", "2") == 0
    original = states(exp_root, "lost")
    (folder / "round_000" / "state.json").unlink()
    capsys.readouterr()
    assert call("--al_it", "0") == 2   # refused before training, not "already finished" after it
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no state.json" in err[0] and "--redo_round 0" in err[0]
    assert call("--al_it", "0", "--al_it_end", "2", "--redo_round", "0") == 0
    assert states(exp_root, "lost") == original   # the same seed redoes the same rounds
    shutil.rmtree(folder / "round_001")
    capsys.readouterr()
    assert call("--al_it", "1") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "round 2 of" in err[0] and "--redo_round 1" in err[0]
    assert call("--al_it", "3", "--redo_round", "3") == 2
    assert "round 3 of" in capsys.readouterr().err
