"""``digits-clip`` loaded for torchmetrics' CLIP score.

torchmetrics 1.9's ``CLIPScore`` takes only a few hub ids as strings, so a local folder needs
the callable form: ``CLIPScore(model_name_or_path=load_digits_clip)``. It also expects
``get_image_features``/``get_text_features`` to return embedding tensors, whereas transformers 5
returns output objects holding them in ``pooler_output``; the subclass below returns the tensors.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import CLIPModel, CLIPProcessor

from . import DIGITS_CLIP


class EmbeddingCLIPModel(CLIPModel):
    """A ``CLIPModel`` whose ``get_*_features`` return the projected embeddings as tensors."""

    def get_image_features(self, *args, **kwargs) -> torch.Tensor:
        return _embedding(super().get_image_features(*args, **kwargs))

    def get_text_features(self, *args, **kwargs) -> torch.Tensor:
        return _embedding(super().get_text_features(*args, **kwargs))


def _embedding(output) -> torch.Tensor:
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def load_digits_clip(folder: Path = DIGITS_CLIP) -> tuple[EmbeddingCLIPModel, CLIPProcessor]:
    """The dual encoder (eval mode) and its processor, as torchmetrics' loader callable wants."""
    model = EmbeddingCLIPModel.from_pretrained(folder).eval()
    return model, CLIPProcessor.from_pretrained(folder)
