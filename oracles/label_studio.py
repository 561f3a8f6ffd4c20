"""The label_studio oracle: a person answers in a Label Studio server, which the run talks to through its API.

It is the files oracle (oracles/files.py) with one step replaced: instead of reading answers that a person
saved, each call pulls them from the server. For round r's request (written as for the files oracle):

1. the run's project: made by the first call (title from the run's folder, its description naming the run
   folder, the request's label_studio_config.xml) with a Local files storage on the run folder, so that
   Label Studio serves the images of every request of the run (tasks name them relative to the server's
   local-files document root, which must be exp_root); its id is kept in the run folder
   (label_studio_project.json) and later calls check that the project is still there and still this run's;
2. the request's label_studio_tasks.json is imported once, the model's masks as predictions whose
   model_version names the run and round; the task ids are kept in the request folder
   (label_studio_import.json);
3. the export of those tasks: while some lack an annotation (skipped ones count as lacking), the call says
   how many and where (WaitingForAnswers, exit 3); once all are annotated, the export is kept in the request
   folder (label_studio_export.json) and read by al/answers.py with the files oracle's checks.

Any failure (server down, refused token, a deleted or foreign project, an HTTP error) is one line, exit 2,
and leaves the run folder as it was.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import constants as C
from al.answers import Answer, AnswerError, counts, read_answers
from al.ledger import Ledger
from al.request import LABEL_STUDIO_CONFIG_FILE, LABEL_STUDIO_TASKS_FILE
from al.state import RunFolder, atomic_write_json
from atomic_io import atomic_write_bytes
from engine.evaluate import Inference
from oracles.base import OracleClient, WaitingForAnswers
from oracles.files import FilesOracle, answer_kind, listed, request_folder
from oracles.label_studio_api import LabelStudio, LabelStudioError, read_token
from parseit import Config, resolve_path

PROJECT_FILE = "label_studio_project.json"   # in the run folder: {"project": id}
IMPORT_FILE = "label_studio_import.json"     # in a request folder: {"project": id, "tasks": [task ids]}
EXPORT_FILE = "label_studio_export.json"     # in a request folder: the export the round took in
# Label Studio's longest project title.
TITLE_CHARS = 50


class LabelStudioOracle(FilesOracle):
    name = C.ORACLE_LABEL_STUDIO

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self.studio = LabelStudio(cfg.label_studio_url, read_token(cfg.label_studio_token_file))

    def collect(self, run: RunFolder, r: int, asked: Sequence[str], first: bool, client: OracleClient
                ) -> dict[str, Answer]:
        """Round r's answers from the server, checked whole; WaitingForAnswers while tasks lack one."""
        self.studio.call("GET", "/api/current-user/whoami")   # server and token, before anything is written
        folder = request_folder(run, r)
        if not (folder / LABEL_STUDIO_TASKS_FILE).is_file():   # the initial request: request_initial writes it
            raise WaitingForAnswers(f"round {r} waits for the request {folder}")
        project = self._project(run, folder)
        tasks = self._imported(folder, project)
        query = urllib.parse.urlencode([("exportType", "JSON"), ("download_all_tasks", "true"),
                                        *(("ids[]", task) for task in tasks)])
        content = self.studio.fetch("GET", f"/api/projects/{project}/export?{query}")
        unanswered = _unanswered(content, project)
        if unanswered:
            raise WaitingForAnswers(f"round {r} waits for {len(unanswered)} of {len(tasks)} {answer_kind(client)} in "
                                    f"Label Studio ({listed(unanswered)}): annotate them in "
                                    f"{self._address(project)}, then run the same command again")
        export = folder / EXPORT_FILE
        atomic_write_bytes(export, content)
        try:
            return read_answers(export, asked, client.answer_sizes(asked), client.answer_classes())
        except AnswerError as error:
            export.unlink()
            raise AnswerError(f"{error} (Label Studio project: {self._address(project)})") from None

    def request_initial(self, run: RunFolder, ledger: Ledger, client: OracleClient, infer: Inference) -> None:
        """Write the initial request; a new one is imported at once, to say what round 0 waits for
        (WaitingForAnswers, in place of the line of the call that found no request)."""
        new = not (request_folder(run, 0) / LABEL_STUDIO_TASKS_FILE).is_file()
        super().request_initial(run, ledger, client, infer)
        if new:
            self.collect(run, 0, ledger.pending, True, client)

    def _address(self, project: int) -> str:
        return f"{self.studio.url}/projects/{project}/"

    def _project(self, run: RunFolder, folder: Path) -> int:
        """The run's project: the one kept in the run folder, checked, or a new one."""
        path = run.root / PROJECT_FILE
        title, description = _identity(run)
        if not path.is_file():
            return self._new_project(run, folder, path, title, description)
        project = _stored(path, "project")
        found = self.studio.call("GET", f"/api/projects/{project}", missing_ok=True)
        if found is None:
            raise LabelStudioError(f"Label Studio project {project} of this run is not on {self.studio.url} (deleted, "
                                   f"or another server): pass the --label_studio_url that holds it, or delete {path} "
                                   "to import the request into a new project (answers given in the old one are lost)")
        if found.get("description") != description:
            raise LabelStudioError(f"Label Studio project {project} at {self.studio.url} is not this run's (it is "
                                   f"{found.get('title')!r}, this run's is {title!r}): pass the --label_studio_url "
                                   f"that holds this run's project, or delete {path} to make a new one")
        return project

    def _new_project(self, run: RunFolder, folder: Path, path: Path, title: str, description: str) -> int:
        """A project with a Local files storage on the run folder; removed again when its images cannot be served."""
        config = (folder / LABEL_STUDIO_CONFIG_FILE).read_text()
        project = self.studio.call("POST", "/api/projects", {"title": title, "description": description,
                                                             "label_config": config})["id"]
        exp_root = resolve_path(self.cfg.exp_root).resolve()
        fix = (f"start Label Studio with its local-files document root at exp_root (bash dependencies/label_studio.sh "
               f"start {exp_root}, or LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true and "
               f"LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={exp_root})")
        try:
            self.studio.call("POST", "/api/storages/localfiles", {"project": project, "path": str(run.root.resolve()),
                                                                  "title": "run folder", "use_blob_urls": False},
                             fix=fix)
            image = json.loads((folder / LABEL_STUDIO_TASKS_FILE).read_text())[0]["data"]["image"]
            status, _ = self.studio.send("GET", image)
            if status != 200:
                raise LabelStudioError(f"Label Studio at {self.studio.url} does not serve the request's images "
                                       f"(HTTP {status} for {image}): {fix}")
        except LabelStudioError:
            with contextlib.suppress(LabelStudioError):
                self.studio.call("DELETE", f"/api/projects/{project}")
            raise
        atomic_write_json(path, {"project": project})
        return project

    def _imported(self, folder: Path, project: int) -> list[int]:
        """The ids of the request's tasks in the project, importing them the first time."""
        path = folder / IMPORT_FILE
        if path.is_file() and _stored(path, "project") == project:
            return _stored(path, "tasks")
        tasks = json.loads((folder / LABEL_STUDIO_TASKS_FILE).read_text())
        imported = self.studio.call("POST", f"/api/projects/{project}/import?return_task_ids=true", tasks)
        atomic_write_json(path, {"project": project, "tasks": imported["task_ids"]})
        return imported["task_ids"]


def _identity(run: RunFolder) -> tuple[str, str]:
    """A run's project title (its run folder's last parts, as Label Studio's title length allows) and description
    (the whole run folder, which tells this run's project from another)."""
    parts = run.root.resolve().parts
    title = "/".join(parts[-3:])
    if len(title) > TITLE_CHARS:
        title = "..." + title[-(TITLE_CHARS - 3):]
    return title, f"Active-learning run {run.root.resolve()}"


def _stored(path: Path, key: str) -> Any:
    try:
        return json.loads(path.read_text())[key]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        raise LabelStudioError(f"{path} is damaged: delete it and run the same command again (it is made again, "
                               "with a new project or a new import of the request)") from None


def _unanswered(content: bytes, project: int) -> list[str]:
    """The sample ids of the exported tasks that have no annotation but skipped ones."""
    try:
        tasks = json.loads(content)
        return sorted(str(t["data"].get("sample_id")) for t in tasks
                      if not any(counts(a) for a in t.get("annotations") or []))
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError, KeyError, AttributeError):
        raise LabelStudioError(f"the export of Label Studio project {project} is not a list of tasks: check that "
                               "--label_studio_url is a Label Studio server and see its log") from None
