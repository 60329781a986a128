"""Feature extractors by name. Each is an ``nn.Module`` mapping uint8 ``[N,3,H,W]`` images to
float features ``[N,D]``, with ``name``, ``num_features``, ``resize`` (``tf`` or ``clean`` for
Inception, ``processor`` for the others, which keep their own image processors),
``resize_policy`` (the same in words; recorded with every number), ``weights_sha256`` and, where
the network has a classifier, logits for the Inception Score.

Real and generated images go through the same module, hence the same resize and quantisation:
both arrive as uint8 (generated images are quantised exactly as a saved PNG would be), each at
its own size; the extractor's own resize is the only one (see :func:`extract`).

Every extractor moves its input to its own device (the device of its weights) and computes
features and logits in one forward pass.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from . import DEFAULT_CLIP

EXTRACTORS = ("inception", "dinov2", "clip", "digits")
ALIASES = {"digits-features": "digits"}  # the zoo folder's name
DEFAULT_DINOV2 = "facebook/dinov2-base"


class FeatureExtractor(nn.Module):
    name: str = ""
    num_features: int = 0
    num_logits: int = 0
    resize: str = "processor"
    resize_policy: str = ""
    #: The file the weights were read from, when there is one: its SHA-256 is the weights'.
    weights_file: Path | None = None

    #: Convolutional networks run channels-last (NHWC): faster on GPUs (tensor cores read it)
    #: and on CPUs (oneDNN's direct kernels; 1.4-1.6x for these networks on two cores).
    channels_last: bool = False

    @property
    def has_logits(self) -> bool:
        return self.num_logits > 0

    @property
    def numerics(self) -> str:
        """What else decides the last bits of a feature: device type, memory layout, PyTorch.
        Cached reference statistics are keyed on it, so a folder compared with itself gets
        bit-identical features on both sides however its statistics were cached."""
        layout = "channels_last" if self.channels_last else "contiguous"
        return f"{self.device.type}; {layout}; torch {torch.__version__}"

    @functools.cached_property
    def weights_sha256(self) -> str:
        """SHA-256 of the weights file, or (weights from a hub folder) of every tensor's name
        and bytes in state-dict order: recorded in the protocol of every number."""
        if self.weights_file is not None and Path(self.weights_file).is_file():
            return file_sha256(Path(self.weights_file))
        digest = hashlib.sha256()
        for key, tensor in self.state_dict().items():
            digest.update(key.encode() + b"\0")
            digest.update(tensor.detach().cpu().contiguous().flatten().view(torch.uint8).numpy())
        return digest.hexdigest()

    @property
    def device(self) -> torch.device:
        """Where the weights live; inputs are moved here."""
        for tensor in self.parameters():
            return tensor.device
        for tensor in self.buffers():
            return tensor.device
        return torch.device("cpu")

    def features_and_logits(
        self, images: torch.Tensor, with_logits: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features ``[N, D]`` and, when asked and available, logits, from one forward pass."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(images)[0]


class DigitsExtractor(FeatureExtractor):
    """The shipped digit classifier's penultimate layer (``core/zoo/digits-features``)."""

    channels_last = True

    def __init__(self, device: str) -> None:
        super().__init__()
        from ..zoo import DIGITS_FEATURES
        from ..zoo.features import load_digits_features

        self.net = load_digits_features(device)
        self.name = "digits"
        self.num_features = self.net.num_features
        self.num_logits = self.net.num_classes
        self.resize_policy = "uint8; bilinear to 32x32, antialias=False"
        self.weights_file = DIGITS_FEATURES / "model.safetensors"

    def features_and_logits(
        self, images: torch.Tensor, with_logits: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        features = self.net(images.to(self.device, non_blocking=True))
        return features, self.net.head(features) if with_logits else None


class InceptionExtractor(FeatureExtractor):
    """torch-fidelity's Inception-v3 (the TF-FID network) through torchmetrics' wrapper.

    torch-fidelity's forward does not move its input to the network's device, so this does:
    the same uint8 batch, on the weights' device, then its own TF1-style bilinear resize
    (``resize="tf"``). With ``resize="clean"`` each image is first resized as clean-fid does
    (:func:`diffusionscope.core.metrics.resize.clean_resize`) and the float 299×299 pixels go
    through the same layers (:func:`inception_from_pixels`).
    """

    channels_last = True

    def __init__(self, device: str, weights: str | None = None, resize: str = "tf") -> None:
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
        from torchmetrics.image.fid import NoTrainInceptionV3

        from .resize import POLICY_WORDS

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
        self.num_logits = 1008
        self.resize = resize
        # torchmetrics >= 1.8 antialiases by default, which no longer matches published FID.
        self.resize_policy = POLICY_WORDS[resize]
        self.weights_file = (
            Path(weights).expanduser()
            if weights is not None
            else Path(torch.hub.get_dir()) / "checkpoints" / Path(URL_INCEPTION_V3).name
        )

    def features_and_logits(
        self, images: torch.Tensor, with_logits: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # The 1008 unbiased logits are one matrix product on the pooled features: computing
        # them always costs nothing next to the convolutions, and keeps one code path.
        if self.resize == "clean":
            features, logits = inception_from_pixels(self.net, clean_pixels(images, self.device))
        else:
            batch = images.to(self.device, torch.uint8, non_blocking=True)
            features, logits = self.net._torch_fidelity_forward(batch)
        return features.reshape(images.shape[0], -1), logits if with_logits else None


def clean_pixels(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 ``[N,3,H,W]`` -> float ``[N,3,299,299]`` on ``device``, resized on the host by
    PIL as clean-fid does (each image at its own size)."""
    from .resize import clean_resize

    arrays = images.permute(0, 2, 3, 1).cpu().numpy()
    resized = np.stack([clean_resize(array) for array in arrays])
    return torch.from_numpy(resized).permute(0, 3, 1, 2).to(device, non_blocking=True)


def inception_from_pixels(
    net: nn.Module, pixels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """torch-fidelity's Inception forward on float 299×299 pixels in [0, 255]: pooled
    features ``[N, 2048]`` and unbiased logits ``[N, 1008]``.

    torch-fidelity's own forward asserts uint8 input (it cannot take clean-fid's float
    pixels), and its TF-1 bilinear resize is the identity at 299×299. So this runs what
    follows the resize -- the ``(x - 128) / 128`` scaling, then the network's layers in their
    declaration order up to the pooling, then the classifier's weights without its bias -- by
    walking the module's own children rather than copying its forward. A test checks that a
    uint8 299×299 batch gives the same features both ways.
    """
    x = (pixels.float() - 128) / 128
    for name, layer in net.named_children():
        if name == "fc":
            break
        x = layer(x)
    features = torch.flatten(x, 1)
    return features, features.mm(net.fc.weight.T)


class TransformersVisionExtractor(FeatureExtractor):
    """DINOv2 (CLS token; FD_DINOv2 of Stein et al. 2023) or a CLIP vision tower (image embeds).

    Images are prepared by the model's own image processor (transformers' torchvision backend),
    on the extractor's device: the resize and centre crop its authors trained with, and every
    image at its own size, so a non-square picture is cropped, not squashed.
    """

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
            self.processor = AutoImageProcessor.from_pretrained(model)
        except OSError as error:
            raise InputError(
                f"--features {kind}: cannot load {model!r} ({str(error).splitlines()[0][:120]}); "
                "offline hosts need the model in the local cache (HF_HUB_OFFLINE=1) or a folder"
            ) from None
        self.net = self.net.eval().to(device)
        self.kind = kind
        self.name = kind
        self.resize_policy = f"uint8; {describe_processor(self.processor)}; {model}"
        self.weights_file = None

    def features_and_logits(
        self, images: torch.Tensor, with_logits: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        device = self.device
        pixels = self.processor(
            images=images.to(device, non_blocking=True), return_tensors="pt", device=device
        )["pixel_values"]
        pixels = pixels.to(device, next(self.net.parameters()).dtype)
        if self.kind == "dinov2":
            return self.net(pixel_values=pixels).last_hidden_state[:, 0], None
        return self.net(pixels), None


def describe_processor(processor: Any) -> str:
    """The resize an image processor applies, in words (recorded with the numbers)."""
    size = dict(getattr(processor, "size", None) or {})
    resample = getattr(processor, "resample", None)
    method = getattr(resample, "name", str(resample)).lower()
    if "shortest_edge" in size:
        text = f"{method} resize of the shorter side to {size['shortest_edge']}"
    else:
        text = f"{method} resize to {size.get('height')}x{size.get('width')}"
    if getattr(processor, "do_center_crop", False):
        crop = dict(processor.crop_size)
        text += f", centre crop {crop['height']}x{crop['width']}"
    return text + " (the model's image processor)"


class ClipImageTower(nn.Module):
    """CLIP's image embedding (``CLIPModel.get_image_features``) without the text tower."""

    def __init__(self, vision_model: nn.Module, projection: nn.Module) -> None:
        super().__init__()
        self.vision_model = vision_model
        self.projection = projection

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.projection(self.vision_model(pixel_values=pixel_values).pooler_output)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def get_extractor(
    name: str,
    device: str = "cpu",
    *,
    inception_weights: str | None = None,
    model: str | None = None,
    resize: str | None = None,
) -> FeatureExtractor:
    """``inception`` | ``dinov2`` | ``clip`` | ``digits``; ``model`` overrides the hub model;
    ``resize`` (``tf`` or ``clean``) is Inception's policy (the others use their own)."""
    name = canonical_name(name)
    check_resize(name, resize)
    if name == "digits":
        extractor: FeatureExtractor = DigitsExtractor(device)
    elif name == "inception":
        extractor = InceptionExtractor(device, inception_weights, resize or "tf")
    elif name == "dinov2":
        extractor = TransformersVisionExtractor("dinov2", model or DEFAULT_DINOV2, device)
    elif name == "clip":
        extractor = TransformersVisionExtractor("clip", model or DEFAULT_CLIP, device)
    else:
        raise InputError(f"--features {name}: unknown extractor (known: {', '.join(EXTRACTORS)})")
    extractor = extractor.eval().requires_grad_(False)
    if extractor.channels_last:
        extractor = extractor.to(memory_format=torch.channels_last)
    return extractor


def canonical_name(name: str) -> str:
    return ALIASES.get(name, name)


def check_resize(features: str, resize: str | None) -> None:
    """``--resize`` is Inception's; the other extractors resize with their own processor, so
    asking them for ``clean`` is refused rather than silently ignored."""
    from .resize import RESIZE_POLICIES

    if resize is not None and resize not in RESIZE_POLICIES:
        raise InputError(f"--resize: choose one of {', '.join(RESIZE_POLICIES)}, got {resize!r}")
    if resize == "clean" and canonical_name(features) != "inception":
        raise InputError(
            f"--resize clean: applies to the inception extractor; {features} resizes with its "
            "own image processor"
        )


@contextlib.contextmanager
def full_float32() -> Iterator[None]:
    """No TF32 inside: features and statistics must not depend on whether the GPU rounds
    float32 products to 10-bit mantissas (cuDNN convolutions do by default). Uses the legacy
    flags only, since mixing them with ``fp32_precision`` makes PyTorch refuse to read them."""
    backends = torch.backends
    try:
        saved = (backends.cudnn.allow_tf32, backends.cuda.matmul.allow_tf32)
    except RuntimeError:  # the caller set the new-style flags: leave them as they are
        yield
        return
    backends.cudnn.allow_tf32 = False
    backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        backends.cudnn.allow_tf32, backends.cuda.matmul.allow_tf32 = saved


def _to_device_batch(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """``[N,H,W,3]`` uint8 -> ``[N,3,H,W]`` uint8 on ``device``, channels-last (a free view of
    the NHWC array); pinned and copied without blocking on CUDA."""
    batch = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    if device.type == "cuda":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch


def extract(
    extractor: FeatureExtractor,
    images: np.ndarray | Sequence[np.ndarray],
    *,
    with_logits: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Features (and logits) of uint8 images, as float32 NumPy arrays in the input's order.

    ``images`` is one ``[N,H,W,3]`` array or a list of ``[H,W,3]`` arrays of any sizes: images
    of one size go through the extractor together, each keeping its own size, so the extractor's
    resize is the only one and a batch's make-up never changes an image's features.
    """
    from ..images import same_size_groups

    count = len(images)
    logits_wanted = with_logits and extractor.has_logits
    features = np.zeros((count, extractor.num_features), np.float32)
    logits = np.zeros((count, extractor.num_logits), np.float32) if logits_wanted else None
    if count == 0:
        return features, logits
    groups = (
        [(list(range(count)), images)]
        if isinstance(images, np.ndarray)
        else same_size_groups(images)
    )
    device = extractor.device
    with torch.inference_mode(), full_float32():
        for positions, group in groups:
            batch = _to_device_batch(group, device)
            f, lg = extractor.features_and_logits(batch, with_logits=logits_wanted)
            features[positions] = f.float().cpu().numpy()
            if logits is not None and lg is not None:
                logits[positions] = lg.float().cpu().numpy()
    return features, logits
