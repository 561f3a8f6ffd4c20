"""Tasks as plug-ins: what is learned and measured, and what the oracle answers with.

A new task is a subclass of tasks.base.Task in its own module (or package), added to `TASKS`
below; `task` in the configuration picks it, and main.py never branches on its name.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

import constants as C
from al.methods import Method
from al.strategies import Strategy
from parseit import Config
from tasks.base import Task
from tasks.classification import ClassificationTask
from tasks.joint import joint_task
from tasks.segmentation import SegmentationTask

TASKS: dict[str, Callable[[Config, Method, Strategy | None, torch.device], Task]] = {
    C.TASK_JOINT: joint_task,
    C.TASK_CLASSIFICATION: ClassificationTask,
    C.TASK_SEGMENTATION: SegmentationTask,
}


def build_task(cfg: Config, method: Method, strategy: Strategy | None, device: torch.device) -> Task:
    """The task the configuration names (parseit has checked the name against constants.TASKS)."""
    return TASKS[cfg.task](cfg, method, strategy, device)
