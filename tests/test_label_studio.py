"""A real Label Studio as the person's tool: the framework's requests go in through its API and its export
comes back as the run's answers.

For each request of a tiny synthetic Entropy run (--oracle files): a project is made with the request's
label_studio_config.xml, a Local files storage is added on the request folder (without it Label Studio
serves none of the images that the tasks name), label_studio_tasks.json is imported with its
pre-annotations, one annotation per task is posted (the dataset's true mask as a brush, or a rectangle
as a polygon), and the JSON export is read by al.answers and given to the run with --oracle_answers.

`bash .ci/run` installs and starts Label Studio (dependencies/label_studio.sh) and sets the variables
read here; the run's --exp_root is Label Studio's local-files document root, so the tasks' image paths
resolve there.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from label_studio_server import Studio, brush, true_mask
from PIL import Image
from synthetic_runs import FOLD, run, states

import constants as C
from al.answers import read_answers
from al.request import FOREGROUND, IMAGE_NAME, POLYGON_NAME

# One run per session, so that a rerun against the same server and document root starts clean.
EXP_ID = f"label-studio-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
# The polygon answer: a rectangle, in % of the image as Label Studio stores points (x, y).
RECTANGLE = ((10.0, 25.0), (50.0, 75.0))

Results = Callable[[int, np.ndarray], list[dict]]


def _call(root: Path, *args: str) -> int | str | None:
    try:
        run(root, "--al_type", "Entropy", "--al_it", "0", "--al_it_end", "1", "--exp_id", EXP_ID,
            "--oracle", "files", *args)
    except SystemExit as exit_:
        return exit_.code
    return 0


def _polygon(shape: tuple[int, int]) -> list[dict]:
    (x0, y0), (x1, y1) = RECTANGLE
    return [{"from_name": POLYGON_NAME, "to_name": IMAGE_NAME, "type": "polygonlabels", "original_width": shape[1],
             "original_height": shape[0], "image_rotation": 0,
             "value": {"points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "closed": True,
                       "polygonlabels": [FOREGROUND]}}]


def _rectangle_mask(shape: tuple[int, int]) -> np.ndarray:
    """The rectangle's pixels, edges included (its corners fall on whole pixels of the synthetic images)."""
    (x0, y0), (x1, y1) = RECTANGLE
    h, w = shape
    mask = np.zeros(shape, dtype=np.uint8)
    mask[round(y0 * h / 100):round(y1 * h / 100) + 1, round(x0 * w / 100):round(x1 * w / 100) + 1] = 1
    return mask


def _through_label_studio(studio: Studio, request: Path, export: Path, results: Results
                          ) -> dict[str, tuple[int, int, float]]:
    """Project, storage, import, one annotation per task (results(k, true mask)), export to `export`;
    sample id -> (task id, annotation id, lead time)."""
    tasks = json.loads((request / "label_studio_tasks.json").read_text())
    project = studio.api("POST", "/api/projects", {"title": f"{EXP_ID} {request.parent.name}",
                                                   "label_config": (request / "label_studio_config.xml").read_text()},
                         expected=201)["id"]
    imported = studio.api("POST", f"/api/projects/{project}/import", tasks, expected=201)
    with_predictions = [t for t in tasks if t.get("predictions")]
    assert (imported["task_count"], imported["prediction_count"]) == (len(tasks), len(with_predictions))
    listed = studio.api("GET", f"/api/tasks?project={project}&page_size=1000")["tasks"]
    assert sorted((t["data"] for t in listed), key=str) == sorted((t["data"] for t in tasks), key=str)
    task_id = {t["data"]["sample_id"]: t["id"] for t in listed}

    predictions = studio.api("GET", f"/api/predictions/?project={project}")
    by_task = {p["task"]: p for p in predictions}
    assert len(predictions) == len(by_task) == len(with_predictions)
    for task in with_predictions:
        stored = by_task[task_id[task["data"]["sample_id"]]]
        expected = task["predictions"][0]
        assert stored["result"] == expected["result"] and stored["model_version"] == expected["model_version"]

    # The image of a task is served from the document root once the request folder is a storage.
    image_url = tasks[0]["data"]["image"]
    image_file = request / "images" / f"{tasks[0]['data']['sample_id']}.png"
    assert studio.raw("GET", image_url)[0] == 404
    studio.api("POST", "/api/storages/localfiles", {"project": project, "path": str(request.resolve()),
                                                    "title": "request", "use_blob_urls": False}, expected=201)
    assert studio.raw("GET", image_url) == (200, "image/png", image_file.read_bytes())

    answered = {}
    for k, task in enumerate(tasks):
        sample_id = task["data"]["sample_id"]
        lead_time = 2.5 + k
        annotation = studio.api("POST", f"/api/tasks/{task_id[sample_id]}/annotations",
                                {"result": results(k, true_mask(sample_id)), "lead_time": lead_time,
                                 "was_cancelled": False}, expected=201)
        answered[sample_id] = (task_id[sample_id], annotation["id"], lead_time)
    status, _, content = studio.raw("GET", f"/api/projects/{project}/export?exportType=JSON")
    assert status == 200, f"export: {status} {content[:500]!r}"
    export.write_bytes(content)
    return answered


def _sizes(request: Path, ids: list[str]) -> dict[str, tuple[int, int]]:
    return {i: Image.open(request / "images" / f"{i}.png").size[::-1] for i in ids}


def _check_state(state: dict, answered: dict[str, tuple[int, int, float]]) -> None:
    assert state["annotations"] == {i: {"source": C.SOURCE_LABEL_STUDIO, "reference": f"task {t}, annotation {a}",
                                        "lead_time": lead} for i, (t, a, lead) in answered.items()}


def test_the_initial_request_through_label_studio_answers_round_0(studio: Studio, studio_root: Path,
                                                                  tmp_path: Path) -> None:
    assert _call(studio_root) == C.EXIT_WAITING
    request = studio_root / FOLD / EXP_ID / "initial" / "to_annotate"
    export = tmp_path / "export.json"
    answered = _through_label_studio(studio, request, export, lambda k, mask: brush(mask))
    assert len(answered) == 6

    answers = read_answers(export, list(answered), _sizes(request, list(answered)))
    assert sorted(answers) == sorted(answered)
    for i, answer in answers.items():
        assert np.array_equal(answer.mask, true_mask(i)), i
        assert (answer.source, answer.lead_time) == (C.SOURCE_LABEL_STUDIO, answered[i][2])
        assert answer.reference == f"task {answered[i][0]}, annotation {answered[i][1]}"

    assert _call(studio_root, "--oracle_answers", str(export)) == C.EXIT_WAITING  # round 0 done, round 1 waits
    (state,) = states(studio_root, EXP_ID)
    _check_state(state, answered)
    assert state["annotation_seconds"] == sum(lead for _, _, lead in answered.values())


def test_a_round_request_with_pre_annotations_through_label_studio_answers_round_1(studio: Studio, studio_root: Path,
                                                                                   tmp_path: Path) -> None:
    request = studio_root / FOLD / EXP_ID / "round_000" / "to_annotate"
    if not request.is_dir():  # the test above did not get round 0 done: answer L_0 with PNGs of the true masks
        _call(studio_root)
        initial = studio_root / FOLD / EXP_ID / "initial" / "to_annotate"
        for task in json.loads((initial / "label_studio_tasks.json").read_text()):
            sample_id = task["data"]["sample_id"]
            Image.fromarray(true_mask(sample_id) * 255).save(initial / "answers" / f"{sample_id}.png")
        assert _call(studio_root) == C.EXIT_WAITING
    tasks = json.loads((request / "label_studio_tasks.json").read_text())
    assert len(tasks) == 3 and all(t.get("predictions") for t in tasks)  # the model's masks to correct
    export = tmp_path / "export.json"
    answered = _through_label_studio(studio, request, export,
                                     lambda k, mask: _polygon(mask.shape) if k == 0 else brush(mask))
    assert len(answered) == 3

    polygon_id = tasks[0]["data"]["sample_id"]
    sizes = _sizes(request, list(answered))
    answers = read_answers(export, list(answered), sizes)
    assert sorted(answers) == sorted(answered)
    for i, answer in answers.items():
        expected = _rectangle_mask(sizes[i]) if i == polygon_id else true_mask(i)
        assert np.array_equal(answer.mask, expected), i
        assert answer.reference == f"task {answered[i][0]}, annotation {answered[i][1]}"
        assert answer.lead_time == answered[i][2]

    before = states(studio_root, EXP_ID)[0]["annotation_seconds"]  # None if round 0 was answered with PNGs
    assert _call(studio_root, "--oracle_answers", str(export)) == 0
    done = states(studio_root, EXP_ID)
    assert len(done) == 2
    _check_state(done[1], answered)
    spent = sum(lead for _, _, lead in answered.values())
    assert done[1]["annotation_seconds"] == (None if before is None else before + spent)
