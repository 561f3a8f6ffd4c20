"""Hybrid classification + segmentation network."""

from models.backbone import PretrainedWeightsError, ResNet18Backbone, WeightsFileError
from models.hybrid import (
    Encoded,
    HybridModel,
    HybridOutput,
    class_maps_at,
    load_matching_state,
)
from models.unet import MIN_INPUT_SIZE, UNetHead
from models.wildcat import WildcatHead

__all__ = [
    "MIN_INPUT_SIZE",
    "Encoded",
    "HybridModel",
    "HybridOutput",
    "PretrainedWeightsError",
    "ResNet18Backbone",
    "UNetHead",
    "WeightsFileError",
    "WildcatHead",
    "class_maps_at",
    "load_matching_state",
]
