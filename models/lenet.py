"""LeNet-5 (LeCun et al. 1998) for small images, the classifier the original framework's
classification task shipped (`lenet5`): torchvision has no network sized for 8x8 or 28x28 inputs,
and its ImageNet families trained from scratch on a few dozen such images barely learn.

Two 5x5 convolutions (6 and 16 maps, padded so that 8x8 inputs keep a spatial extent), each
followed by ReLU and 2x2 max pooling, an adaptive average pool to LeNet's 5x5, then the fully
connected 120 -> 84 -> classes. About 60k parameters.
"""

from __future__ import annotations

from torch import Tensor, nn


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(6, 16, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True),
            nn.AdaptiveAvgPool2d(5),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(16 * 25, 120), nn.ReLU(inplace=True),
                                        nn.Linear(120, 84), nn.ReLU(inplace=True), nn.Linear(84, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
