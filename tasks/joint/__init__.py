"""The joint task of the paper: class labels for every image, binary masks from the oracle.
Stage 1 (WSL) trains theta0 on the class labels; stage 2 (every other method) runs Algorithm 1."""

from __future__ import annotations

import torch

from al.methods import Method
from al.strategies import Strategy
from parseit import Config
from tasks.base import Task
from tasks.joint.stage1 import WSLTask
from tasks.joint.stage2 import JointTask


def joint_task(cfg: Config, method: Method, strategy: Strategy | None, device: torch.device) -> Task:
    """The stage the method runs (al/methods.py)."""
    return (WSLTask if method.stage == 1 else JointTask)(cfg, method, strategy, device)
