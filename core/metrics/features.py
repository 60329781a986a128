"""Feature extractors by name. Each is an ``nn.Module`` mapping uint8 ``[N,3,H,W]`` images to
float features ``[N,D]``, with ``name``, ``num_features``, ``resize_policy`` (recorded with every
number) and, where the network has a classifier, ``logits`` for the Inception Score.

Real and generated images go through the same module, hence the same resize and quantisation:
both arrive as uint8 (generated images are quantised exactly as a saved PNG would be).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from diffusionscope.core.errors import InputError

EXTRACTORS = ("inception", "dinov2", "clip", "digits")
ALIASES = {"digits-features": "digits"}  # the zoo folder's name
DEFAULT_DINOV2 = "facebook/dinov2-base"
DEFAULT_CLIP = "openai/clip-vit-large-patch14"


class FeatureExtractor(nn.Module):
    name: str = ""
    num_features: int = 0
    resize_policy: str = ""
    has_logits: bool = False

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} has no classifier for the Inception Score")


class DigitsExtractor(FeatureExtractor):
    """The shipped digit classifier's penultimate layer (``core/zoo/digits-features``)."""

    has_logits = True

    def __init__(self, device: str) -> None:
        super().__init__()
        from diffusionscope.core.zoo.features import load_digits_features

        self.net = load_digits_features(device)
        self.name = "digits"
        self.num_features = self.net.num_features
        self.resize_policy = "uint8; bilinear to 32x32, antialias=False"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.logits(images)


class InceptionExtractor(FeatureExtractor):
    """torch-fidelity's Inception-v3 (the TF-FID network) through torchmetrics' wrapper."""

    has_logits = True

    def __init__(self, device: str, weights: str | None = None) -> None:
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        if weights is not None:
            check_weights_file(weights)
        try:
            self.net = NoTrainInceptionV3(
                name="inception-v3-compat",
                features_list=["2048", "logits_unbiased"],
                feature_extractor_weights_path=weights,
                antialias=False,
            ).to(device)
        except (OSError, RuntimeError) as error:
            raise InputError(
                "inception weights: cannot load the Inception-v3 weights "
                f"({str(error).splitlines()[0][:150]}); on an offline host pass "
                "--inception-weights pt_inception-2015-12-05.pth"
            ) from None
        self.name = "inception"
        self.num_features = 2048
        # torchmetrics >= 1.8 antialiases by default, which no longer matches published FID.
        self.resize_policy = "uint8; bilinear to 299x299, antialias=False (torch-fidelity/TF FID)"

    def _both(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, logits = self.net._torch_fidelity_forward(images.to(torch.uint8))
        return features.reshape(images.shape[0], -1), logits

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self._both(images)[0]

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self._both(images)[1]


class TransformersVisionExtractor(FeatureExtractor):
    """DINOv2 (CLS token; FD_DINOv2 of Stein et al. 2023) or a CLIP vision tower (image embeds)."""

    def __init__(self, kind: str, model: str, device: str) -> None:
        super().__init__()
        from transformers import AutoImageProcessor

        try:
            if kind == "dinov2":
                from transformers import Dinov2Model

                self.net = Dinov2Model.from_pretrained(model)
                self.num_features = int(self.net.config.hidden_size)
            else:
                from transformers import CLIPModel

                # The full model, not CLIPVisionModelWithProjection: that one reads the
                # projection width from vision_config, which CLIPModel folders may leave at
                # its default while the weights use the top-level projection_dim.
                clip = CLIPModel.from_pretrained(model)
                self.net = ClipImageTower(clip.vision_model, clip.visual_projection)
                self.num_features = int(clip.config.projection_dim)
                del clip
            processor = AutoImageProcessor.from_pretrained(model)
        except OSError as error:
            raise InputError(
                f"--features {kind}: cannot load {model!r} ({str(error).splitlines()[0][:120]}); "
                "offline hosts need the model in the local cache (HF_HUB_OFFLINE=1) or a folder"
            ) from None
        self.net = self.net.eval().to(device)
        size = (
            processor.crop_size if getattr(processor, "do_center_crop", False) else processor.size
        )
        side = int(size.get("height") or size.get("shortest_edge") or 224)
        self.side = side
        self.register_buffer("mean", torch.tensor(processor.image_mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(processor.image_std).view(1, 3, 1, 1))
        self.kind = kind
        self.name = kind
        self.resize_policy = f"uint8; bicubic to {side}x{side}, antialias=True; {model}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.mean.device, torch.float32) / 255.0
        x = nn.functional.interpolate(x, size=(self.side, self.side), mode="bicubic",
                                      align_corners=False, antialias=True).clamp(0, 1)  # fmt: skip
        x = (x - self.mean) / self.std
        if self.kind == "dinov2":
            return self.net(pixel_values=x).last_hidden_state[:, 0]
        return self.net(x)


class ClipImageTower(nn.Module):
    """CLIP's image embedding (``CLIPModel.get_image_features``) without the text tower."""

    def __init__(self, vision_model: nn.Module, projection: nn.Module) -> None:
        super().__init__()
        self.vision_model = vision_model
        self.projection = projection

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.projection(self.vision_model(pixel_values=pixel_values).pooler_output)


def check_weights_file(path: str) -> None:
    """Open a user-supplied weights file without executing code: torch-fidelity later loads it
    with a full unpickle, so it must first pass ``torch.load(weights_only=True)``."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise InputError(f"--inception-weights {path}: no such file")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 -- any failure here means: do not unpickle it
        raise InputError(
            f"--inception-weights {path}: not a plain tensor file, refused "
            f"({type(error).__name__}: {str(error).splitlines()[0][:100]})"
        ) from None
    if not isinstance(state, dict) or not state:
        raise InputError(f"--inception-weights {path}: expected a state dict of tensors")


def get_extractor(name: str, device: str = "cpu", *, inception_weights: str | None = None,
                  model: str | None = None) -> FeatureExtractor:  # fmt: skip
    """``inception`` | ``dinov2`` | ``clip`` | ``digits``; ``model`` overrides the hub model."""
    name = canonical_name(name)
    if name == "digits":
        return DigitsExtractor(device).eval()
    if name == "inception":
        return InceptionExtractor(device, inception_weights).eval()
    if name == "dinov2":
        return TransformersVisionExtractor("dinov2", model or DEFAULT_DINOV2, device).eval()
    if name == "clip":
        return TransformersVisionExtractor("clip", model or DEFAULT_CLIP, device).eval()
    raise InputError(f"--features {name}: unknown extractor (known: {', '.join(EXTRACTORS)})")


def canonical_name(name: str) -> str:
    return ALIASES.get(name, name)
