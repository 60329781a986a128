"""The resize policies FID is published with, and the reference crop.

``tf`` (the default) is torch-fidelity's: the uint8 image goes into the network, whose own
TF-1-style bilinear resize (no antialiasing) brings it to 299×299, as the original TF FID code
does. ``clean`` is clean-fid's "clean" mode (Parmar et al. 2022,
``cleanfid.resize.make_resizer("PIL", False, "bicubic", (299, 299))``): each channel becomes a
32-bit float PIL image, is resized with PIL's bicubic filter (which antialiases when it
shrinks), clipped to [0, 255] and never re-quantised; the float 299×299 array then enters the
same network, whose own resize does nothing at that size.

:func:`clean_resize` is written here rather than imported because clean-fid is a test
dependency only (its package also pulls a downloader and a progress bar); the function is the
same five PIL calls, and ``tests/test_protocols.py`` pins it bit for bit to clean-fid's own.

The reference crop (``--reference-size S --reference-crop center|none``) is the preprocessing
MosaicML and others publish for COCO: the shorter side resized to ``S`` (PIL bicubic), then a
centred ``S``×``S`` crop. It happens before the resize policy, on the reference images only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

RESIZE_POLICIES = ("tf", "clean")
CROPS = ("center", "none")
CLEAN_SIZE = 299

#: What each policy does, in words (recorded with every number and part of every cache key).
POLICY_WORDS = {
    "tf": "uint8; bilinear to 299x299, antialias=False (torch-fidelity/TF FID)",
    "clean": "clean: float32 PIL bicubic to 299x299 per channel, no re-quantisation (clean-fid)",
}


def clean_resize(image: np.ndarray, size: int = CLEAN_SIZE) -> np.ndarray:
    """``[H, W, 3]`` uint8 -> ``[size, size, 3]`` float32 in [0, 255], as clean-fid does it."""
    from PIL import Image

    channels = []
    for index in range(3):
        plane = Image.fromarray(np.ascontiguousarray(image[:, :, index]).astype(np.float32))
        plane = plane.resize((size, size), resample=Image.Resampling.BICUBIC)
        channels.append(np.asarray(plane).clip(0, 255).reshape(size, size, 1))
    return np.concatenate(channels, axis=2).astype(np.float32)


@dataclass(frozen=True)
class ReferenceCrop:
    """``--reference-size`` and ``--reference-crop``: nothing, a centred square crop at the
    image's own size, the shorter side resized to ``size``, or both."""

    size: int | None = None
    crop: str = "none"

    @classmethod
    def from_args(cls, args: object) -> ReferenceCrop:
        size = getattr(args, "reference_size", None)
        crop = getattr(args, "reference_crop", None) or ("center" if size else "none")
        if crop not in CROPS:
            raise InputError(f"--reference-crop: choose one of {', '.join(CROPS)}, got {crop!r}")
        return cls(size, crop)

    @property
    def active(self) -> bool:
        return self.size is not None or self.crop != "none"

    def describe(self) -> str:
        """In words, for results, the report and the cache key."""
        if not self.active:
            return "none"
        parts = []
        if self.size is not None:
            parts.append(f"shorter side to {self.size} (PIL bicubic)")
        if self.crop == "center":
            parts.append(f"center crop {self.size or 'shorter side'}")
        return ", ".join(parts)

    def check_size(self, width: int, height: int, where: str) -> None:
        """Refuse an image smaller than the crop: the protocol never enlarges a reference."""
        if self.size is not None and min(width, height) < self.size:
            raise InputError(
                f"--reference-size {self.size}: {where} is {width}x{height}, smaller than the "
                "crop (reference images are never enlarged)"
            )

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The image with the shorter side resized and the centre cropped, as asked: through
        torchvision's ``resize`` and ``center_crop`` on a PIL image, as the published COCO
        evaluations do (PIL bicubic, the longer side truncated, the crop's offset rounded)."""
        if not self.active:
            return image
        from PIL import Image
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as tvf

        picture = Image.fromarray(image)
        if self.size is not None and min(image.shape[:2]) != self.size:
            picture = tvf.resize(picture, self.size, interpolation=InterpolationMode.BICUBIC)
        if self.crop == "center":
            picture = tvf.center_crop(picture, min(picture.size))
        return np.asarray(picture, dtype=np.uint8)
