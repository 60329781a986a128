"""The shipped model zoo: a digits text-to-image latent diffusion pipeline, its feature network
and a tiny CLIP model, trained on scikit-learn's bundled digits (``python -m diffusionscope.core.zoo.build``).

They let every mode run offline on a CPU with results that mean something, through the same
loading code as Stable Diffusion. This module only names paths: it imports nothing heavy.
"""

from __future__ import annotations

from pathlib import Path

ZOO_DIR = Path(__file__).resolve().parent
DIGITS_LDM = ZOO_DIR / "digits-ldm"
DIGITS_FEATURES = ZOO_DIR / "digits-features"
DIGITS_CLIP = ZOO_DIR / "digits-clip"
DIGITS_REFERENCE = ZOO_DIR / "digits-reference"
DIGITS_PROMPTS = ZOO_DIR / "prompts.txt"
DIGITS_CAPTIONS = DIGITS_REFERENCE / "captions.json"  # the reference as a COCO caption set
