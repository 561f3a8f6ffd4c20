"""The label_studio oracle against a real Label Studio: the run imports its requests and pulls the answers
through the API, with a token the test creates as a person would, and a person's annotations posted
through the API.

Tiny synthetic Entropy runs (rounds 0 and 1), --exp_root being the server's local-files document root.
`bash .ci/run` starts the server (dependencies/label_studio.sh); without it the tests skip, saying why.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from label_studio_server import Studio, brush, true_mask
from PIL import Image
from synthetic_runs import FOLD, run, states, tree

import constants as C
from oracles.label_studio import EXPORT_FILE, IMPORT_FILE, PROJECT_FILE

# Run ids of this session, so that a rerun against the same server and document root starts clean.
PREFIX = f"ls-oracle-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"


def personal_token(studio: Studio) -> str:
    """A new personal access token of the session's user, as Account & Settings makes one (a user holds one at a
    time: the others are revoked first)."""
    for listed in studio.api("GET", "/api/token/"):
        studio.api("POST", "/api/token/blacklist/", {"refresh": listed["token"]}, expected=204)
    return studio.api("POST", "/api/token/", {}, expected=201)["token"]


def legacy_token(studio: Studio) -> str:
    """The user's legacy token, once the organisation accepts legacy tokens (off by default since 1.20)."""
    studio.api("POST", "/api/jwt/settings", {"api_tokens_enabled": True, "legacy_api_tokens_enabled": True})
    return studio.api("GET", "/api/current-user/token")["token"]


def _token_file(path: Path, token: str) -> str:
    path.write_text(token + "\n")
    return str(path)


def _call(root: Path, exp_id: str, *args: str, last: int = 1) -> int | str | None:
    try:
        run(root, "--al_type", "Entropy", "--al_it", "0", "--al_it_end", str(last), "--exp_id", exp_id,
            "--max_epochs", "1", "--oracle", "label_studio", "--label_studio_url", os.environ["LABEL_STUDIO_URL"], *args)
    except SystemExit as exit_:
        return exit_.code
    return 0


def _project(root: Path, exp_id: str) -> int:
    return json.loads((root / FOLD / exp_id / PROJECT_FILE).read_text())["project"]


def _annotate(studio: Studio, project: int, leave: int = 0, empty: str | None = None) -> dict[str, str]:
    """Annotate the project's tasks that have no annotation with the true masks (the task of `empty` with no
    region), leaving the last `leave` of them; sample id -> "task <t>, annotation <a>"."""
    tasks = [t for t in studio.api("GET", f"/api/tasks?project={project}&page_size=1000")["tasks"]
             if not t["total_annotations"]]
    answered = {}
    for task in tasks[:len(tasks) - leave]:
        sample_id = task["data"]["sample_id"]
        result = [] if sample_id == empty else brush(true_mask(sample_id))
        annotation = studio.api("POST", f"/api/tasks/{task['id']}/annotations",
                                {"result": result, "lead_time": 4.0, "was_cancelled": False}, expected=201)
        answered[sample_id] = f"task {task['id']}, annotation {annotation['id']}"
    return answered


def _check_round(root: Path, exp_id: str, r: int, answered: dict[str, str]) -> None:
    """Round r took in exactly the annotations posted, as the true masks, and names them in its state."""
    state = states(root, exp_id)[r]
    assert state["annotations"] == {i: {"source": C.SOURCE_LABEL_STUDIO, "reference": ref, "lead_time": 4.0}
                                    for i, ref in answered.items()}
    for i in answered:
        kept = np.asarray(Image.open(root / FOLD / exp_id / f"round_{r:03d}" / "annotations" / f"{i}.png"))
        assert np.array_equal(kept > 0, true_mask(i) > 0), i


def test_two_rounds_through_the_api_with_a_personal_access_token(studio: Studio, studio_root: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    exp_id, token = f"{PREFIX}-pat", personal_token(studio)
    args = ("--label_studio_token_file", _token_file(tmp_path / "token", token))
    folder = studio_root / FOLD / exp_id
    assert _call(studio_root, exp_id, *args) == C.EXIT_WAITING
    project = _project(studio_root, exp_id)
    out = capsys.readouterr().out
    assert "round 0 waits for 6 of 6 masks in Label Studio" in out
    assert f"{os.environ['LABEL_STUDIO_URL']}/projects/{project}/" in out
    assert studio.api("GET", f"/api/projects/{project}")["description"] == f"Active-learning run {folder.resolve()}"

    first = _annotate(studio, project, leave=1)
    assert _call(studio_root, exp_id, *args) == C.EXIT_WAITING
    assert "round 0 waits for 1 of 6 masks" in capsys.readouterr().out
    first |= _annotate(studio, project)
    assert _call(studio_root, exp_id, *args) == C.EXIT_WAITING   # round 0 done, round 1's request imported
    assert "round 1 waits for 3 of 3 masks" in capsys.readouterr().out
    assert len(first) == 6 and (folder / "initial" / "to_annotate" / EXPORT_FILE).is_file()
    _check_round(studio_root, exp_id, 0, first)

    # One project for the run; round 1's tasks carry the model's masks under the run's and round's name.
    assert _project(studio_root, exp_id) == project
    predictions = studio.api("GET", f"/api/predictions/?project={project}")
    assert len(predictions) == 3 and {p["model_version"] for p in predictions} == {f"{exp_id}: round 0 picks for round 1"}
    second = _annotate(studio, project)
    assert _call(studio_root, exp_id, *args) == 0
    assert len(states(studio_root, exp_id)) == 2 and len(second) == 3
    _check_round(studio_root, exp_id, 1, second)

    captured = capsys.readouterr()
    assert token not in captured.out + captured.err
    assert not [p for p in folder.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]


def test_a_legacy_token_from_the_environment(studio: Studio, studio_root: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture) -> None:
    exp_id, token = f"{PREFIX}-legacy", legacy_token(studio)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", token)
    assert _call(studio_root, exp_id) == C.EXIT_WAITING
    assert "round 0 waits for 6 of 6 masks in Label Studio" in capsys.readouterr().out
    project = _project(studio_root, exp_id)
    assert len(studio.api("GET", f"/api/tasks?project={project}&page_size=1000")["tasks"]) == 6
    folder = studio_root / FOLD / exp_id
    assert not [p for p in folder.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]


def _closed_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return listener.getsockname()[1]


def _refused(root: Path, exp_id: str, capsys: pytest.CaptureFixture, *args: str) -> str:
    """The one error line of a call that must exit 2 and leave the run folder as it was."""
    before = tree(root / FOLD / exp_id)
    assert _call(root, exp_id, *args) == C.EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert tree(root / FOLD / exp_id) == before
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


def test_a_server_token_or_project_that_cannot_be_used_is_one_line(studio: Studio, studio_root: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    exp_id, token = f"{PREFIX}-errors", personal_token(studio)
    good = ("--label_studio_token_file", _token_file(tmp_path / "token", token))
    assert _call(studio_root, exp_id, *good) == C.EXIT_WAITING
    project = _project(studio_root, exp_id)
    capsys.readouterr()

    down = _refused(studio_root, exp_id, capsys, *good, "--label_studio_url", f"http://127.0.0.1:{_closed_port()}")
    assert "cannot reach Label Studio" in down
    forged = _token_file(tmp_path / "forged", token[:-6] + "AAAAAA")
    assert "refused the personal access token" in _refused(studio_root, exp_id, capsys, "--label_studio_token_file", forged)
    legacy = _token_file(tmp_path / "legacy", "0" * 40)
    assert "refused the legacy token" in _refused(studio_root, exp_id, capsys, "--label_studio_token_file", legacy)
    missing = _refused(studio_root, exp_id, capsys, "--label_studio_token_file", str(tmp_path / "nothing"))
    assert "cannot read the Label Studio token file" in missing

    record = studio_root / FOLD / exp_id / PROJECT_FILE
    other = studio.api("POST", "/api/projects", {"title": f"{PREFIX} other"}, expected=201)["id"]
    record.write_text(json.dumps({"project": other}))
    assert "is not this run's" in _refused(studio_root, exp_id, capsys, *good)
    record.write_text(json.dumps({"project": project}))

    studio.api("POST", "/api/token/blacklist/", {"refresh": token}, expected=204)
    assert "refused the personal access token" in _refused(studio_root, exp_id, capsys, *good)
    good = ("--label_studio_token_file", _token_file(tmp_path / "token", personal_token(studio)))
    studio.api("DELETE", f"/api/projects/{project}", expected=204)
    assert f"project {project} of this run is not on" in _refused(studio_root, exp_id, capsys, *good)


def test_an_annotation_without_a_region_is_refused(studio: Studio, studio_root: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    exp_id = f"{PREFIX}-empty"
    args = ("--label_studio_token_file", _token_file(tmp_path / "token", personal_token(studio)))
    assert _call(studio_root, exp_id, *args) == C.EXIT_WAITING
    request = studio_root / FOLD / exp_id / "initial" / "to_annotate"
    assert json.loads((request / IMPORT_FILE).read_text())["project"] == _project(studio_root, exp_id)
    empty = json.loads((request / "label_studio_tasks.json").read_text())[0]["data"]["sample_id"]
    _annotate(studio, _project(studio_root, exp_id), empty=empty)
    capsys.readouterr()
    before = tree(studio_root / FOLD / exp_id)
    assert _call(studio_root, exp_id, *args, last=0) == C.EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and empty in err and "empty (nothing drawn" in err, err
    assert tree(studio_root / FOLD / exp_id) == before and not (request / EXPORT_FILE).exists()
