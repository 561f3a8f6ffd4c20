"""One active-learning round per call (or a range of rounds with --al_it_end), Algorithm 1 of the paper.

    python main.py --yaml synthetic.yaml --al_type WSL --MYSEED 0               # stage 1: theta0
    python main.py --yaml synthetic.yaml --al_type Random --MYSEED 0 --al_it 0  # one round
    python main.py --yaml synthetic.yaml --al_type Label_prop --al_it 0 --al_it_end 4

A round (play_round): take in what the oracle revealed -> train on the labelled (and
pseudo-labelled) set -> evaluate -> the method's strategy (al/strategies) scores the candidates and
picks the next batch -> pseudo-label where the method does -> hand the pick to the oracle -> write
the round's state (al.state.RoundState). The three axes are registries chosen by the configuration:
the task (tasks/: joint, classification), the strategy (al/strategies/) and the oracle (oracles/:
simulated, files, label_studio). A finished round is skipped when called again; an interrupted one starts again
cleanly. The run folder layout is documented in al/state.py.

With `--oracle files` a person answers: each round ends by writing the next request
(round_<r>/to_annotate/), and a call whose answers are not there yet says so and exits 3
(constants.EXIT_WAITING); bad answers exit 2 before anything is written (oracles/files.py). With
`--oracle label_studio` the requests go to a Label Studio server and the answers come from it
(oracles/label_studio.py); a server or token that cannot be used exits 2 as well.
"""

from __future__ import annotations

import sys

from parseit import print_help

if __name__ == "__main__" and {"--help", "-h"} & set(sys.argv[1:]):
    print_help()  # answered before torch is imported (seconds on a cold start)
    sys.exit(0)

import functools
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from pathlib import Path

import constants as C
from al.answers import AnswerError
from al.ledger import Ledger
from al.locks import RunLockedError
from al.methods import METHODS
from al.state import STATE_FILE, AlreadyDone, RoundState, RunFolder, RunStateError, config_changes, run_dir
from al.strategies import StrategySettings, build_strategy
from data.records import DataError
from engine.checkpoint import CheckpointError
from engine.context import inference
from engine.evaluate import Inference
from engine.runtime import DeviceError, select_device, set_deterministic
from engine.train import TrainingError
from models.backbone import PretrainedWeightsError
from oracles import LabelStudioError, Oracle, Revealed, WaitingForAnswers, build_oracle
from parseit import Config, exit_on_error, parse_config, save_config, summary
from tasks import Task, build_task
from tasks.base import Clock


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--help" in argv or "-h" in argv:
        print_help()
        return
    try:
        with exit_on_error(DataError, CheckpointError, RunStateError, RunLockedError, DeviceError,
                           PretrainedWeightsError, AnswerError, LabelStudioError, TrainingError, OSError):
            cfg = parse_config(argv)
            print(summary(cfg), flush=True)
            try:
                run_rounds(cfg)
            except WaitingForAnswers as waiting:
                print(f"waiting: {waiting}", flush=True)
                sys.exit(C.EXIT_WAITING)
            except AlreadyDone as done:
                print(done, flush=True)
    except KeyboardInterrupt:
        # A round stopped half-way left only its round_<r>.partial/ folder, which the next call starts again.
        print("interrupted; run the same command again to resume", file=sys.stderr, flush=True)
        sys.exit(C.EXIT_INTERRUPTED)


def run_rounds(cfg: Config) -> None:
    """The rounds the call asks for that have not finished, each checked before anything is written."""
    device = select_device(cfg.device, cfg.cudaid)
    set_deterministic(cfg.deterministic)
    method = METHODS[cfg.al_type]
    strategy = None if method.strategy is None else build_strategy(method.strategy, strategy_settings(cfg))
    task, oracle, infer = build_task(cfg, method, strategy, device), build_oracle(cfg), inference(cfg, device)
    # Two generated scripts may start the same seed's stage 1 together: the second waits for the first.
    with RunFolder(run_dir(cfg), wait=method.stage == 1) as run:
        check_config(run, cfg)
        last = cfg.al_it if cfg.al_it_end is None else cfg.al_it_end
        pending = pending_rounds(run, cfg, oracle, last)
        if not pending:
            return
        task.prepare(run, pending[0])
        for r in pending:
            ledger = task.ledger(run.read_state(r - 1) if r > 0 else None)
            revealed = take_in(cfg, task, oracle, run, r, ledger, infer, first=r == pending[0])
            save_config_once(run, cfg)
            if r == cfg.redo_round:   # the new answers passed their checks: the old rounds step aside
                print(f"round {r}: round {r} and later rounds moved to {run.supersede(r)}", flush=True)
            attempt = functools.partial(write_round, task, oracle, run, r, ledger, revealed)
            state = with_fp32_retry(attempt, infer, run, r)
            print(task.round_line(state), flush=True)
            if state.exhausted and r < last:
                print(f"round {r + 1}: " + (f"the study stopped at round {r} ({state.stop_reason})"
                                            if state.stop_reason else "the pool is exhausted, nothing left to annotate"))
                break


def pending_rounds(run: RunFolder, cfg: Config, oracle: Oracle, last: int) -> list[int]:
    """Rounds al_it..last not finished yet (all of them from redo_round on); none when the study already
    stopped. Finished rounds are read (a damaged state.json is reported, not skipped) and skipped; a round
    folder without its state, or finished rounds after the first pending one, are refused."""
    first = cfg.al_it
    redo = cfg.redo_round is not None
    if redo and not run.round_folders(first):
        raise RunStateError(f"--redo_round {first}: round {first} of {run.root} was never run: run it with "
                            f"--al_it {first} and no --redo_round")
    pending = [r for r in range(first, last + 1) if redo or not run.is_done(r)]
    if not pending:
        oracle.check_finished(run, first)
    for r in sorted(set(range(first, last + 1)) - set(pending)):
        run.read_state(r)
        print(f"round {r}: already finished in {run.root}, skipped")
    if pending and not redo:
        _check_unfinished(run, pending[0])
    if pending and pending[0] > 0 and not run.is_done(pending[0] - 1):
        raise RunStateError(f"round {pending[0] - 1} of {run.root} has not finished: run it first "
                            f"(--al_it {pending[0] - 1})")
    if pending and pending[0] > 0 and run.read_state(pending[0] - 1).exhausted:
        reason = run.read_state(pending[0] - 1).stop_reason or "the pool is exhausted"
        print(f"round {pending[0]}: the study stopped at round {pending[0] - 1} ({reason}), nothing to do")
        return []
    return pending


def _check_unfinished(run: RunFolder, r: int) -> None:
    """Round r is about to run: no folder of it may have lost its state, and no later round may have
    finished (it was built on a round r that is gone)."""
    if run.round_dir(r).exists():
        raise RunStateError(f"{run.round_dir(r)} has no {STATE_FILE} (deleted or damaged): run again with "
                            f"--redo_round {r} to move it to superseded/ and run round {r} again")
    later = [j for j in run.done_rounds() if j > r]
    if later:
        raise RunStateError(f"round{'s' * (len(later) > 1)} {', '.join(map(str, later))} of {run.root} finished "
                            f"after a round {r} that is gone: run again with --redo_round {r} to move them to "
                            f"superseded/ and run round {r} again")


def take_in(cfg: Config, task: Task, oracle: Oracle, run: RunFolder, r: int, ledger: Ledger, infer: Inference,
            first: bool) -> Revealed:
    """What the oracle revealed for round r, checked whole before anything is written. A person who has
    not answered yet gets the initial request before round 0 (WaitingForAnswers)."""
    if not task.asks_oracle:
        return Revealed({})
    try:
        return oracle.reveal(run, r, ledger, first, task)
    except WaitingForAnswers:
        save_config_once(run, cfg)
        if r == 0:
            oracle.request_initial(run, ledger, task, infer)
        raise


def write_round(task: Task, oracle: Oracle, run: RunFolder, r: int, ledger: Ledger, revealed: Revealed,
                infer: Inference, retried: str | None) -> RoundState:
    """Round r played and published in the run folder (a crash leaves no half round)."""
    clock = Clock()
    with run.attempt(r) as partial:
        state = play_round(task, oracle, run, r, ledger, revealed, partial, infer, clock)
        state.retried_fp32 = retried
        with clock("write"):
            oracle.keep(partial, revealed)
            state.timings = dict(clock.seconds)
            run.finish_round(r, partial, state)
    task.prune_models(run, r)
    return state


def play_round(task: Task, oracle: Oracle, run: RunFolder, r: int, ledger: Ledger, revealed: Revealed,
               partial: Path, infer: Inference, clock: Clock) -> RoundState:
    """Algorithm 1: one round, from the labelled set the oracle gave to the next pick it is handed."""
    work = task.new_work(r, ledger, revealed, run.read_state(r - 1) if r > 0 else None)
    with task.training_log(partial, r) as log:   # each epoch to training_log.csv (and tensorboard/)
        task.train(work, infer, clock, log)     # the round's model(s) on L_r (and the pseudo-labelled set)
    task.evaluate(work, infer, clock)       # metrics on validation and test, at original resolution
    task.select(work, infer, clock)         # the strategy scores the pool and picks U'_{r+1}
    task.pseudo_label(work, infer, clock)   # Label_prop: masks for the samples paired by kNN
    with clock("write"):
        oracle.request(run, partial, r, work, task, infer)   # a person is handed the pick
        task.save_model(work, partial)                        # for predict.py, the figures and a warm start
    return task.publish(work, partial, clock)


def with_fp32_retry(attempt: Callable[[Inference, str | None], RoundState], infer: Inference, run: RunFolder,
                    r: int) -> RoundState:
    """Round r; when its bf16 training diverges, the round runs again once from its start in fp32 and its
    state records why. A divergence in fp32 stops the run and is recorded in the run folder (failed.json),
    so that the curve checks of the study report the lost run."""
    try:
        return attempt(infer, None)
    except TrainingError as error:
        if not (infer.bf16 and infer.device.type == "cuda"):
            run.record_failure(r, str(error))
            raise
        first = str(error)
    print(f"round {r}: {first}; running the round again from its start in fp32", flush=True)
    try:
        return attempt(replace(infer, bf16=False), first)
    except TrainingError as error:
        run.record_failure(r, str(error))
        raise


def save_config_once(run: RunFolder, cfg: Config) -> None:
    """config.yaml is written by the first call that gets past every check."""
    if not (run.root / "config.yaml").is_file():
        save_config(cfg, run.root / "config.yaml")


def check_config(run: RunFolder, cfg: Config) -> None:
    """Later calls on a run folder must agree with its saved config.yaml on what shapes the results."""
    path = run.root / "config.yaml"
    if path.is_file():
        changed = config_changes(path, cfg)
        if changed is None:
            raise RunStateError(f"{path} is empty or corrupt: delete it (the finished rounds stay and the next call "
                                "writes it again) or use another --exp_id")
        if changed:
            raise RunStateError(f"{run.root} was run with another configuration ({', '.join(changed[:3])} differ): "
                                "use the same values or a new --exp_id")


def strategy_settings(cfg: Config) -> StrategySettings:
    """The strategies' hyper-parameters: the keys of the same name (T of the MC passes is mcdropout_t); a task's
    configuration holds those of the strategies it runs."""
    values = {f.name: cfg[f.name] for f in fields(StrategySettings) if f.name in cfg}
    return StrategySettings(**values, mc_passes=cfg.mcdropout_t)


if __name__ == "__main__":
    main()
