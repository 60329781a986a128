"""Per-sample CLIP score (``100 · cos(image, text)``, Hessel et al. 2021), as torchmetrics
defines it, computed with ``transformers.CLIPModel`` on the run's device.

Not torchmetrics' ``CLIPScore``: it accepts only a fixed list of hub ids as strings (a local
folder such as the zoo's CLIP needs a loader callable, which transformers 5's output objects
then break), and its update (``_clip_score_update``) moves the model to the device of the
first image it is given, so CPU images pull a GPU model onto the CPU for the rest of the run.
Here the model stays where it was put, images are prepared by the model's own image processor
on that device, and tokens are moved there. Per-sample scores go into the checkpoint chunks,
which makes resume and multi-process runs exact without a metric state of their own.

Prompts longer than the text tower's context are truncated by the tokenizer, which keeps the
end-of-text token CLIP pools on; torchmetrics cuts the token ids instead and drops it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..errors import InputError


def _embedding(output: Any) -> torch.Tensor:
    """transformers 5 returns output objects whose ``pooler_output`` is the projected
    embedding; older releases return the tensor itself."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class ClipScorer:
    def __init__(self, model_path: str, device: str) -> None:
        from transformers import CLIPModel, CLIPProcessor

        try:
            self.model = CLIPModel.from_pretrained(model_path).eval().requires_grad_(False)
            self.processor = CLIPProcessor.from_pretrained(model_path)
        except OSError as error:
            raise InputError(
                f"--clip-model {model_path}: cannot load ({str(error).splitlines()[0][:120]})"
            ) from None
        self.model.to(device)
        self.context = int(self.model.config.text_config.max_position_embeddings)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def scores(
        self, images: np.ndarray | Sequence[np.ndarray], prompts: Sequence[str]
    ) -> np.ndarray:
        """One score per image (uint8 ``[H,W,3]`` arrays of any sizes) and its prompt."""
        from .features import full_float32

        device = self.device
        pictures = [
            torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).to(device)
            for image in images
        ]
        tokens = self.processor.tokenizer(
            list(prompts),
            padding=True,
            truncation=True,
            max_length=self.context,
            return_tensors="pt",
        )
        with torch.inference_mode(), full_float32():
            pixels = self.processor.image_processor(
                images=pictures, return_tensors="pt", device=device
            )["pixel_values"]
            image_embeds = _embedding(self.model.get_image_features(pixel_values=pixels.to(device)))
            text_embeds = _embedding(
                self.model.get_text_features(
                    input_ids=tokens["input_ids"].to(device),
                    attention_mask=tokens["attention_mask"].to(device),
                )
            )
            image_embeds = image_embeds / image_embeds.norm(p=2, dim=-1, keepdim=True)
            text_embeds = text_embeds / text_embeds.norm(p=2, dim=-1, keepdim=True)
            score = 100 * (image_embeds * text_embeds).sum(dim=-1)
        return score.double().cpu().numpy()
