"""The zoo's grounding loss: which words it grounds where, and that it rewards maps on their
region, through the same probabilities the attention mode captures."""

from __future__ import annotations

import torch

from diffusionscope.core.zoo import DIGITS_LDM
from diffusionscope.core.zoo.grounding import (
    grounding_loss,
    recording_cross_attention,
    word_targets,
)


def test_word_targets_ground_ink_words_on_ink_and_paper_words_on_paper() -> None:
    targets = word_targets(["a thick red seven on a black background"], tokens=12)
    # position 0 is the start token; word i sits at i + 1
    assert targets[0, :9].tolist() == [0, 0, 1, 1, 1, 0, 0, -1, -1]
    assert targets[0, 9:].abs().sum() == 0  # end and padding tokens are free


def _maps(on_ink: float, ink: torch.Tensor, targets: torch.Tensor) -> list[torch.Tensor]:
    """``[1, pixels, tokens]`` maps putting ``on_ink`` of each ink word's mass on the ink."""
    cells = ink.flatten(1)[0]
    inside = cells / cells.sum()
    outside = (1 - cells) / (1 - cells).sum()
    columns = []
    for target in targets[0]:
        share = on_ink if target > 0 else 1 - on_ink if target < 0 else 0.5
        columns.append(share * inside + (1 - share) * outside)
    return [torch.stack(columns, dim=1)[None]]


def test_loss_is_zero_on_the_region_and_grows_as_maps_leave_it() -> None:
    ink = torch.zeros(1, 1, 8, 8)
    ink[..., 2:6, 3:5] = 1.0
    targets = word_targets(["a red seven on a white background"], tokens=10)
    weights = torch.ones(1)
    losses = [
        grounding_loss(_maps(share, ink, targets), ink, targets, weights).item()
        for share in (1.0, 0.8, 0.5, 0.2)
    ]
    assert losses[0] < 1e-10
    assert losses == sorted(losses) and losses[-1] > 0.5
    assert grounding_loss(_maps(0.2, ink, targets), ink, targets, torch.zeros(1)).item() == 0.0


def test_recording_sees_every_cross_attention_call_and_restores_processors() -> None:
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(DIGITS_LDM / "unet")
    before = {name: type(p) for name, p in unet.attn_processors.items()}
    sample = torch.randn(2, unet.config.in_channels, 8, 8)
    context = torch.randn(2, 5, unet.config.cross_attention_dim, requires_grad=True)
    with recording_cross_attention(unet) as recorded:
        unet(sample, torch.tensor([10, 500]), context)
    crosses = [name for name in before if ".attn2." in f".{name}"]
    assert len(recorded) == len(crosses) > 0
    for probabilities in recorded:
        assert probabilities.shape[0] == 2 and probabilities.shape[-1] == 5
        assert torch.allclose(probabilities.sum(dim=-1), torch.ones(()), atol=1e-5)
    recorded[0].sum().backward()  # gradients reach the text side, which the loss trains
    assert context.grad is not None and context.grad.abs().sum() > 0
    assert {name: type(p) for name, p in unet.attn_processors.items()} == before
