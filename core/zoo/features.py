"""``digits-features``: the digit classifier whose penultimate layer is the digits' FID space.

Inception features mean little on 32x32 synthetic digits (as they do on MNIST, where LeNet
features are used instead); a classifier trained on the same data gives a feature space in which
FID, KID, precision/recall and Inception Score measure what matters for this data. Inputs follow
torchmetrics' convention: uint8 ``[N, 3, H, W]`` in 0..255, so the module plugs straight into
``FrechetInceptionDistance(feature=net)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import DIGITS_FEATURES

INPUT_SIZE = 32


class DigitsFeatureNet(nn.Module):
    """A small CNN: three conv stages, then a ``num_features``-wide embedding and 10 logits."""

    def __init__(self, num_features: int = 64, num_classes: int = 10) -> None:
        super().__init__()
        self.num_features = num_features
        self.num_classes = num_classes
        self.frozen = False  # set by load_digits_features: then train() keeps eval mode

        def stage(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
                nn.Conv2d(cout, cout, 3, padding=1),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
                nn.MaxPool2d(2),
            )

        self.body = nn.Sequential(stage(3, 32), stage(32, 64), stage(64, 96))
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(96 * 4 * 4, num_features), nn.ReLU())
        self.head = nn.Linear(num_features, num_classes)

    def train(self, mode: bool = True) -> DigitsFeatureNet:
        """Loaded networks stay in eval mode: torchmetrics metrics are modules, and a metric's
        ``.train()`` would otherwise switch the BatchNorm layers to batch statistics."""
        return super().train(mode and not self.frozen)

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (or 0..255 float) images of any size -> normalised 32x32 float input.

        Resized bilinearly without antialiasing, the same for real and generated images.
        """
        x = images.to(next(self.parameters()).device, torch.float32) / 255.0
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(
                x,
                size=(INPUT_SIZE, INPUT_SIZE),
                mode="bilinear",
                align_corners=False,
                antialias=False,
            )
        return (x - 0.5) / 0.5

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``[N, num_features]``."""
        return self.embed(self.body(self._prepare(images)))

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward(images))

    @torch.no_grad()
    def classify(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits(images).argmax(dim=-1)

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / "model.safetensors"))
        config = {
            "num_features": self.num_features,
            "num_classes": self.num_classes,
            "input_size": INPUT_SIZE,
            "resize": "bilinear, antialias=False",
        }
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def load_digits_features(device: str = "cpu", folder: Path = DIGITS_FEATURES) -> DigitsFeatureNet:
    """The shipped classifier in eval mode on ``device``."""
    from safetensors.torch import load_file

    config = json.loads((folder / "config.json").read_text())
    net = DigitsFeatureNet(config["num_features"], config["num_classes"])
    net.load_state_dict(load_file(str(folder / "model.safetensors")))
    net.eval().requires_grad_(False)
    net.frozen = True
    return net.to(device)
