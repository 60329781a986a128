"""A tiny random Stable Diffusion pipeline, and its export as an original-layout single file.

The loader tests need a pipeline in every form a user hands over: a diffusers folder and a
single ``.safetensors`` checkpoint in the original (LDM) key layout that diffusers'
``from_single_file`` converts. diffusers ships only the LDM -> diffusers direction, so the
inverse key mapping for the SD 1.x layout is written here; the round-trip test proves it right.
"""

from __future__ import annotations

from pathlib import Path

import torch

from diffusionscope.core.zoo.tokenizer import word_tokenizer

TOKENS = ["a", "red", "blue", "seven", "two", "on", "white", "background"]


def build_tiny_pipeline(folder: Path, seed: int = 0) -> Path:
    """Save a random-weight StableDiffusionPipeline (16 px images) as a diffusers folder."""
    from diffusers import (
        AutoencoderKL,
        PNDMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    tokenizer = word_tokenizer(folder / "tokenizer", TOKENS, max_length=16)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer.get_vocab()),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=16,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(16, 32),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=16,
    )
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        steps_offset=1,
    )
    pipeline = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(folder, safe_serialization=True)
    return folder


# --------------------------------------------------------------------------------------------
# diffusers -> original (LDM) key layout, SD 1.x
# --------------------------------------------------------------------------------------------

_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
_VAE_ATTENTION = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}


def _rename_resnet(rest: str, table: dict[str, str]) -> str:
    head, _, tail = rest.partition(".")
    return f"{table.get(head, head)}.{tail}"


def _unet_key(key: str, layers_per_block: int, up_has_attention: list[bool]) -> str:
    step = layers_per_block + 1
    parts = key.split(".")
    fixed = {
        "time_embedding.linear_1": "time_embed.0",
        "time_embedding.linear_2": "time_embed.2",
        "conv_in": "input_blocks.0.0",
        "conv_norm_out": "out.0",
        "conv_out": "out.2",
    }
    for old, new in fixed.items():
        if key.startswith(old + "."):
            return new + key[len(old) :]
    if parts[0] == "down_blocks":
        block, kind = int(parts[1]), parts[2]
        if kind == "downsamplers":
            return f"input_blocks.{(block + 1) * step}.0.op." + ".".join(parts[5:])
        index = block * step + int(parts[3]) + 1
        rest = ".".join(parts[4:])
        if kind == "resnets":
            return f"input_blocks.{index}.0.{_rename_resnet(rest, _RESNET)}"
        return f"input_blocks.{index}.1.{rest}"
    if parts[0] == "mid_block":
        kind, index, rest = parts[1], int(parts[2]), ".".join(parts[3:])
        if kind == "attentions":
            return f"middle_block.1.{rest}"
        return f"middle_block.{2 * index}.{_rename_resnet(rest, _RESNET)}"
    if parts[0] == "up_blocks":
        block, kind = int(parts[1]), parts[2]
        if kind == "upsamplers":
            slot = 2 if up_has_attention[block] else 1
            return f"output_blocks.{block * step + step - 1}.{slot}." + ".".join(parts[4:])
        index = block * step + int(parts[3])
        rest = ".".join(parts[4:])
        if kind == "resnets":
            return f"output_blocks.{index}.0.{_rename_resnet(rest, _RESNET)}"
        return f"output_blocks.{index}.1.{rest}"
    raise KeyError(key)


def _vae_key(key: str, num_blocks: int) -> str:
    parts = key.split(".")
    if parts[0] in ("quant_conv", "post_quant_conv"):
        return key
    coder, rest = parts[0], parts[1:]
    if rest[0] == "conv_norm_out":
        return f"{coder}.norm_out." + ".".join(rest[1:])
    if rest[0] in ("conv_in", "conv_out"):
        return key
    if rest[0] in ("down_blocks", "up_blocks"):
        block = int(rest[1])
        level = block if coder == "encoder" else num_blocks - 1 - block
        name = "down" if coder == "encoder" else "up"
        if rest[2] in ("downsamplers", "upsamplers"):
            sample = "downsample" if coder == "encoder" else "upsample"
            return f"{coder}.{name}.{level}.{sample}." + ".".join(rest[4:])
        tail = ".".join(rest[4:])
        tail = tail.replace("conv_shortcut", "nin_shortcut")
        return f"{coder}.{name}.{level}.block.{rest[3]}.{tail}"
    if rest[0] == "mid_block":
        if rest[1] == "resnets":
            return f"{coder}.mid.block_{int(rest[2]) + 1}." + ".".join(rest[3:]).replace(
                "conv_shortcut", "nin_shortcut"
            )
        tail = ".".join(rest[3:])
        for old, new in _VAE_ATTENTION.items():
            if tail.startswith(old + "."):
                tail = new + tail[len(old) :]
        return f"{coder}.mid.attn_1.{tail}"
    raise KeyError(key)


def export_ldm_single_file(pipeline_folder: Path, target: Path) -> Path:
    """Write the pipeline in ``pipeline_folder`` as one SD 1.x-layout ``.safetensors`` file."""
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import save_file

    pipeline = StableDiffusionPipeline.from_pretrained(pipeline_folder)
    unet_config = pipeline.unet.config
    up_attention = ["CrossAttn" in name for name in unet_config.up_block_types]
    state: dict[str, torch.Tensor] = {}
    for key, value in pipeline.unet.state_dict().items():
        new = _unet_key(key, unet_config.layers_per_block, up_attention)
        state["model.diffusion_model." + new] = value
    num_vae_blocks = len(pipeline.vae.config.block_out_channels)
    for key, value in pipeline.vae.state_dict().items():
        new = _vae_key(key, num_vae_blocks)
        if ".mid.attn_1." in new and new.endswith("weight") and value.ndim == 2:
            value = value[:, :, None, None]  # the original uses 1x1 convolutions
        state["first_stage_model." + new] = value
    for key, value in pipeline.text_encoder.state_dict().items():
        # Original checkpoints keep transformers' older ``text_model.`` nesting.
        nested = key if key.startswith("text_model.") else "text_model." + key
        state["cond_stage_model.transformer." + nested] = value
    save_file({k: v.contiguous() for k, v in state.items()}, str(target))
    return target
