"""The run folder: what each round decided, written so that a crash never leaves half a round.

Layout of one fold's experiments:

    <exp_root>/<debug_subfolder>/<dataset>/split_<s>-fold_<f>/
        theta0/seed_<s>.pt     stage-1 checkpoint written by WSL, read by every stage-2 run of that seed
        theta0/seed_<s>.pt.lock   exists while a stage-1 process trains it (the others of that seed wait)
        knn_cache/             Label_prop colour histograms (shared by seeds and rounds)
        <exp_id>/              one run (one method and one seed, every round):
        config.yaml            resolved configuration of the run (later calls must agree with it)
        lock                   held (flock) by the process working on the run; holds its pid while held
        round_000/state.json   everything round 0 decided and measured (a RoundState, versioned)
        round_000/training_log.csv   per epoch of each cycle and member: lr, loss, validation score, ...
        round_000/tensorboard/       the same as TensorBoard event files (tensorboard: true)
        round_000/pseudo_masks/<id>.png   pseudo-masks that round r+1 trains on (Label_prop)
        round_000/annotations/<id>.png    oracle files: the person's masks this round took in
        round_000/test_masks/<id>.png     the round's masks of the test images, as measured (qualitative figures)
        round_000/to_annotate/            oracle files: the request for round r+1 (al/request.py)
        round_000/model.pt     the round's model(s) with its configuration and metrics (engine/round_model.py);
                               keep_models: every round's, the last finished round's (default) or none
        initial/to_annotate/              oracle files: the request for the initial labelled set
        round_001/...
        round_003.partial/     a round in progress; removed when the round is started again
        failed.json            the round whose training diverged and stopped the run, with the error line
                               (removed once that round finishes); the curve checks report it
        superseded/<time>/round_<r>/...   rounds set aside by --redo_round (round r and every later one),
                               kept as they were

A round is written into `round_<r>.partial/` and renamed to `round_<r>/` once complete, so a
round folder exists if and only if the round finished. Rerunning a finished round is a no-op;
an interrupted one starts again cleanly.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import yaml
from PIL import Image

import constants as C
from al.locks import acquire_lock, release_lock, remove_empty
from atomic_io import atomic_write, atomic_write_text
from parseit import Config, config_differences, resolve_path

STATE_FILE = "state.json"
FAILURE_FILE = "failed.json"
SUPERSEDED_DIR = "superseded"
MASKS_DIR = "pseudo_masks"
TEST_MASKS_DIR = "test_masks"
ANNOTATIONS_DIR = "annotations"
MODEL_FILE = "model.pt"   # a round's model (engine/round_model.py)
# Version 1: written before the strategy plug-ins (no "version" key, no best.member);
# version 2: before the person oracle and the classification task (no annotations, annotation_seconds,
# task, stop_reason).
STATE_VERSION = 3
# Keys that may change between calls on the same run folder without changing its results.
RESUME_FREE_KEYS = ("al_it", "al_it_end", "redo_round", "max_al_its", "progress", "keep_models", "tensorboard", "cudaid", "device", "cache_dir",
                    "exp_root", "debug_subfolder", "data_root", "fold_folder", "valid_batch_size", "path_pre_trained",
                    "oracle_answers", "label_studio_url", "label_studio_token_file")


def experiment_dir(cfg: Config) -> Path:
    """<exp_root>/<debug_subfolder>/<dataset>/split_<s>-fold_<f>: every run of one fold, theta0 and caches."""
    base = resolve_path(cfg.exp_root)
    if cfg.debug_subfolder:
        base = base / cfg.debug_subfolder
    return base / cfg.dataset / f"split_{cfg.split}-fold_{cfg.fold}"


def run_dir(cfg: Config) -> Path:
    """The folder of one run: exp_id, by default <al_type>-seed_<MYSEED>."""
    return experiment_dir(cfg) / (cfg.exp_id or f"{cfg.al_type}-seed_{cfg.MYSEED}")


def theta0_path(cfg: Config) -> Path:
    """Where stage 1 writes theta0 and stage 2 reads it (one per dataset, split, fold and seed)."""
    if cfg.path_pre_trained:
        return resolve_path(cfg.path_pre_trained)
    stem = f"seed_{cfg.MYSEED}" if cfg.wsl_method == C.WSL_WILDCAT else f"{cfg.wsl_method}-seed_{cfg.MYSEED}"
    return experiment_dir(cfg) / "theta0" / f"{stem}.pt"


def theta0_lock(path: Path) -> Path:
    """The lock stage 1 holds while it trains the theta0 at `path` (stage 2 waits while it is held)."""
    return path.with_name(path.name + ".lock")


class RunStateError(ValueError):
    """The run folder is inconsistent with the request (one line naming the problem and the fix)."""


class AlreadyDone(Exception):
    """What the call asks for was done by another process (theta0 of the same configuration): the message
    is printed and the call ends with exit code 0."""


def config_changes(path: Path, cfg: Config, ignore: Sequence[str] = ()) -> list[str] | None:
    """The keys whose values in the saved config.yaml `path` differ from cfg's, those free to change between
    calls (RESUME_FREE_KEYS) and `ignore` aside; None when the file is missing, empty or corrupt."""
    try:
        saved = yaml.safe_load(path.read_text())
    except (FileNotFoundError, yaml.YAMLError, UnicodeDecodeError):
        return None
    if not isinstance(saved, dict):
        return None
    return config_differences(saved, cfg.to_dict(), ignore=(*RESUME_FREE_KEYS, *ignore))


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=1, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8 text"
        raise RunStateError(f"{path} is corrupt ({reason}): delete that round's folder and run the round again") \
            from None


@dataclass
class BestEpoch:
    """Where the round's reported weights come from: epoch, cycle, ensemble member, validation score."""

    epoch: int
    cycle: int
    valid_score: float
    member: int = 0


@dataclass
class RoundState:
    """Everything one round decided and measured: the one contract between main.py, resume, the
    plot script and the benchmarks. `to_json`/`from_json` give the file; older versions still read."""

    round: int
    method: str
    seed: int
    dataset: str
    n_train: int
    labelled: list[str]
    selected: list[str]
    exhausted: bool
    best: BestEpoch
    metrics: dict[str, Any]                  # subset -> {"dice_idx", "miou", "acc", "n", ...}
    history: dict[str, Any]                  # cycle (and member) -> {"loss": [...], "valid": [...]}
    pseudo_pairs: dict[str, str] = field(default_factory=dict)   # P_r: unlabelled id -> labelled partner
    n_pseudo_trained: int = 0
    threshold: float | None = None
    pseudo_threshold: float | None = None
    theta0: str | None = None
    theta0_sha256: str | None = None                             # stage 2: digest of the theta0 the run started from
    wsl_method: str | None = None                                # joint task: the stage-1 localiser that trained theta0
    test_dice_per_image: dict[str, float] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)       # strategy score of every scored candidate
    timings: dict[str, float] = field(default_factory=dict)      # seconds per phase
    unit: str = "image"                                          # what the oracle annotates: image or region
    revealed: dict[str, list[int]] = field(default_factory=dict)  # partially annotated image -> its regions
    selected_regions: dict[str, list[int]] = field(default_factory=dict)  # the region pick, per image
    pixels_annotated: int = 0                                    # pixels of L_r plus the revealed regions
    n_pixels: int = 0                                            # pixels of the whole train set
    # Masks (or regions) this round took from the oracle: id -> {"source": simulated | file |
    # label_studio, "reference": PNG path or Label Studio task/annotation, "lead_time": seconds or None}.
    annotations: dict[str, dict[str, Any]] = field(default_factory=dict)
    annotation_seconds: float | None = None                      # annotators' time so far, when every answer had one
    task: str = "joint"                                          # joint or classification
    stop_reason: str | None = None                               # classification: why the study stopped here
    # Set when the round's bf16 training diverged and the round was run again from its start in fp32: the
    # error line of the bf16 attempt (engine.train.TrainingError).
    retried_fp32: str | None = None
    version: int = STATE_VERSION

    @property
    def n_labelled(self) -> int:
        return len(self.labelled)

    @property
    def percent_labelled(self) -> float:
        return 100 * len(self.labelled) / self.n_train

    @property
    def percent_pixels(self) -> float | None:
        """Annotated share of the train set's pixels, in % (None in files that predate it)."""
        return 100 * self.pixels_annotated / self.n_pixels if self.n_pixels else None

    def metric(self, subset: str, key: str) -> float | None:
        """metrics[subset][key], or None when the round did not measure it."""
        value = (self.metrics.get(subset) or {}).get(key)
        return None if value is None else float(value)

    def to_json(self) -> dict[str, Any]:
        """The file's content; n_labelled and percent_labelled are written for readers of the JSON."""
        payload = asdict(self)
        payload["n_labelled"] = self.n_labelled
        payload["percent_labelled"] = self.percent_labelled
        payload["percent_pixels"] = self.percent_pixels
        return payload

    @classmethod
    def from_json(cls, payload: Any, source: Path | str = "state.json") -> RoundState:
        """A state from its file's content (any version up to this one); RunStateError names what is wrong."""
        def bad(problem: str) -> RunStateError:
            return RunStateError(f"{source}: {problem}; delete that round's folder and run the round again")

        if not isinstance(payload, dict):
            raise bad("not a round state (expected a JSON object)")
        version = payload.get("version", 1)
        if not isinstance(version, int) or not 1 <= version <= STATE_VERSION:
            raise RunStateError(f"{source} has state version {version!r}, this version reads 1 to {STATE_VERSION}: "
                                "use the version of the framework that wrote it")
        values: dict[str, Any] = {}
        for spec in fields(cls):
            if spec.name not in payload:
                if spec.default is not MISSING or spec.default_factory is not MISSING:
                    continue
                raise bad(f"key '{spec.name}' is missing")
            values[spec.name] = payload[spec.name]
        for name, types in _STATE_TYPES.items():
            if name in values and not isinstance(values[name], types):
                raise bad(f"key '{name}' has type {type(values[name]).__name__}")
            if name in values and isinstance(values[name], bool) and bool not in types:
                raise bad(f"key '{name}' has type bool")
        best = values["best"]
        if not isinstance(best, dict) or not {"epoch", "cycle", "valid_score"} <= set(best):
            raise bad("key 'best' lacks epoch, cycle or valid_score")
        values["best"] = BestEpoch(int(best["epoch"]), int(best["cycle"]),
                                   float(best["valid_score"]), int(best.get("member", 0)))
        values["version"] = STATE_VERSION
        return cls(**values)


# Expected JSON types of the round state's keys (checked when a file is read).
_STATE_TYPES: dict[str, tuple[type, ...]] = {
    "round": (int,), "method": (str,), "seed": (int,), "dataset": (str,), "n_train": (int,),
    "labelled": (list,), "selected": (list,), "exhausted": (bool,), "metrics": (dict,), "history": (dict,),
    "pseudo_pairs": (dict,), "n_pseudo_trained": (int,), "threshold": (float, int, type(None)),
    "pseudo_threshold": (float, int, type(None)), "theta0": (str, type(None)), "theta0_sha256": (str, type(None)), "wsl_method": (str, type(None)), "test_dice_per_image": (dict,),
    "scores": (dict,), "timings": (dict,), "unit": (str,), "revealed": (dict,), "selected_regions": (dict,),
    "pixels_annotated": (int,), "n_pixels": (int,), "annotations": (dict,),
    "annotation_seconds": (float, int, type(None)), "task": (str,), "stop_reason": (str, type(None)),
    "retried_fp32": (str, type(None)),
}


class RunFolder:
    """One run's folder, locked for the lifetime of the object (released on close or process exit)."""

    def __init__(self, root: Path, wait: bool = False):
        self.root = root
        self.wait = wait            # block until another process releases the run (instead of refusing)
        self._lock_handle: TextIO | None = None
        self._created: list[Path] = []
        self._held: list[tuple[TextIO, Path, list[Path]]] = []

    def lock(self) -> None:
        self._lock_handle, self._created = acquire_lock(self.root / "lock", self.wait, f"run folder {self.root}")

    def hold(self, lock: Path, what: str) -> None:
        """Another lock for as long as the run folder's (stage 1 holds its theta0's), waiting while another
        process holds it; the lock file and the folders made for it go again on release."""
        handle, created = acquire_lock(lock, True, what)
        self._held.append((handle, lock, created))

    def close(self) -> None:
        """Release the locks; the folders this lock created and nothing else wrote into are removed again,
        so that a call refused before its first write leaves no trace."""
        for handle, lock, created in reversed(self._held):
            lock.unlink(missing_ok=True)
            remove_empty(created)
            release_lock(handle)
        self._held = []
        if self._lock_handle is not None:
            if self.root in self._created and [p.name for p in self.root.iterdir()] == ["lock"]:
                (self.root / "lock").unlink()
                remove_empty(self._created)
            release_lock(self._lock_handle)
            self._lock_handle = None

    def __enter__(self) -> RunFolder:  # noqa: PYI034 (Python 3.10 has no typing.Self)
        self.lock()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Rounds -------------------------------------------------------------------------------
    def round_dir(self, r: int) -> Path:
        return self.root / f"round_{r:03d}"

    def is_done(self, r: int) -> bool:
        return (self.round_dir(r) / STATE_FILE).is_file()

    def done_rounds(self) -> list[int]:
        return sorted(int(p.name.split("_")[1]) for p in self.root.glob("round_[0-9][0-9][0-9]")
                      if (p / STATE_FILE).is_file())

    def read_state(self, r: int) -> RoundState:
        path = self.round_dir(r) / STATE_FILE
        if not path.is_file():
            raise RunStateError(f"round {r} of {self.root} has not finished: run it first (--al_it {r})")
        return RoundState.from_json(read_json(path), path)

    def begin_round(self, r: int) -> Path:
        """A clean scratch folder for round r (whatever an interrupted attempt left is removed)."""
        partial = self.round_dir(r).with_name(self.round_dir(r).name + ".partial")
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
        return partial

    @contextmanager
    def attempt(self, r: int) -> Iterator[Path]:
        """begin_round, and the scratch folder removed again when the round fails with an error (a killed
        process leaves it, and the next attempt starts clean)."""
        partial = self.begin_round(r)
        try:
            yield partial
        except Exception:
            shutil.rmtree(partial, ignore_errors=True)
            raise

    def finish_round(self, r: int, partial: Path, state: RoundState) -> None:
        """Write the state last, then publish the folder with one rename; a failure of this round is resolved."""
        atomic_write_json(partial / STATE_FILE, state.to_json())
        final = self.round_dir(r)
        if final.exists():
            raise RunStateError(f"round {r} already finished in {self.root}: delete {final} to run it again")
        os.replace(partial, final)
        failure = self.failure()
        if failure is not None and failure[0] <= r:
            (self.root / FAILURE_FILE).unlink()

    def prune_models(self, keep: str, latest: int, next_round_reads: bool) -> None:
        """After round `latest` finished: the model files keep_models does not keep are deleted (`none` keeps the
        latest while the next round reads it, for a warm start)."""
        if keep == C.KEEP_ALL:
            return
        last_kept = latest if keep == C.KEEP_LAST or next_round_reads else latest + 1
        for r in self.done_rounds():
            if r < last_kept:
                (self.round_dir(r) / MODEL_FILE).unlink(missing_ok=True)

    def round_folders(self, first: int) -> list[Path]:
        """Every folder of round first or later, finished, damaged or in progress (round_<r>[.partial])."""
        return sorted(p for p in self.root.glob("round_[0-9][0-9][0-9]*") if int(p.name[6:9]) >= first)

    def supersede(self, r: int) -> Path:
        """Round r and every later round moved, as they are, to superseded/<UTC time>/: they are run again
        (--redo_round), and nothing a person answered or a round measured is deleted."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        archive = self.root / SUPERSEDED_DIR / stamp
        k = 1
        while archive.exists():
            k += 1
            archive = self.root / SUPERSEDED_DIR / f"{stamp}-{k}"
        archive.mkdir(parents=True)
        for folder in self.round_folders(r):
            os.replace(folder, archive / folder.name)
        return archive

    def record_failure(self, r: int, reason: str) -> None:
        """Round r stopped the run (its training diverged): kept until the round finishes, so that a study
        that lost the run says so."""
        atomic_write_json(self.root / FAILURE_FILE, {"round": r, "reason": reason})

    def failure(self) -> tuple[int, str] | None:
        """(round, error line) of the failure that stopped the run, or None."""
        path = self.root / FAILURE_FILE
        if not path.is_file():
            return None
        try:
            payload = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("round"), int):
            raise RunStateError(f"{path} is not a failure record: delete it (it only marks a diverged round)")
        return payload["round"], str(payload.get("reason", ""))

    # Pseudo-masks and a person's masks -------------------------------------------------------------
    @staticmethod
    def write_mask(folder: Path, sample_id: str, mask: np.ndarray, kind: str = MASKS_DIR,
                   label_map: bool = False) -> None:
        """A binary mask as 0/255, or a label map's values as they are (a write that fails names the file)."""
        image = Image.fromarray(mask.astype(np.uint8) if label_map else (mask > 0).astype(np.uint8) * 255)
        atomic_write(folder / kind / f"{sample_id}.png", lambda tmp: image.save(tmp, format="PNG"))

    def read_mask(self, r: int, sample_id: str, kind: str = MASKS_DIR, label_map: bool = False) -> np.ndarray:
        path = self.round_dir(r) / kind / f"{sample_id}.png"
        try:
            with Image.open(path) as image:
                return np.asarray(image).astype(np.uint8) if label_map else (np.asarray(image) > 127).astype(np.uint8)
        except (OSError, SyntaxError, ValueError):
            raise RunStateError(f"mask {path} is missing or unreadable: delete {self.round_dir(r)} and run round {r} "
                                "again") from None
