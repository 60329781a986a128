"""Rebuild the shipped zoo from scratch on a CPU: ``python -m diffusionscope.core.zoo.build``.

Stages (``--only`` picks some): ``features`` (digit classifier), ``vae``, ``ldm`` (text encoder
and UNet, trained together on the VAE's latents), ``ground`` (the LDM fine-tuned with a token
grounding loss on its cross-attention maps, :mod:`diffusionscope.core.zoo.grounding`), ``clip`` (tiny
contrastive dual encoder) and ``reference`` (real digits as PNGs plus the prompt list).
Everything is seeded and written as safetensors with the standard ``save_pretrained`` layouts,
so the results load through the same code as any hub model. Model sizes are chosen so the whole
build fits in about an hour on two CPU cores (the LDM's 8000 steps take about 30 minutes, the
2000 grounding steps about 10) and the weights stay well under 20 MB.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import (
    DIGITS_CAPTIONS,
    DIGITS_CLIP,
    DIGITS_FEATURES,
    DIGITS_LDM,
    DIGITS_PROMPTS,
    DIGITS_REFERENCE,
    ZOO_DIR,
)
from .prompts import (
    COLORS,
    DIGIT_WORDS,
    VOCABULARY,
    make_prompt,
    random_samples,
)
from .tokenizer import word_tokenizer, write_word_vocabulary

SEED = 1234
MAX_TOKENS = 16
TRAIN_POOL = 24000
REFERENCE_COUNT = 1000
GROUNDING_WEIGHT = 1.0
GROUNDING_LR = 3e-4


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``[N,H,W,3]`` -> float ``[N,3,H,W]`` in [-1, 1] (the VAE's and SD's range)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def cosine_lr(step: int, total: int, warmup: int = 100) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def train_loop(
    parameters: list[torch.nn.Parameter],
    steps: int,
    lr: float,
    loss_fn: Callable[[int], torch.Tensor],
    name: str,
    on_step: Callable[[], None] | None = None,
) -> None:
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_lr(s, steps))
    started, running = time.time(), None
    for step in range(steps):
        loss = loss_fn(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        scheduler.step()
        if on_step is not None:
            on_step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 200 == 0 or step == steps - 1:
            log(
                f"{name} step {step + 1}/{steps} loss {running:.4f} ({time.time() - started:.0f} s)"
            )


class Pool:
    """A fixed pool of rendered training samples, drawn from by seeded batches."""

    def __init__(self, count: int, seed: int) -> None:
        samples = random_samples(count, seed)
        self.images = np.stack([s.image for s in samples])
        self.labels = torch.tensor([s.digit for s in samples])
        self.prompts = [s.prompt for s in samples]
        self.rng = np.random.default_rng(seed + 1)

    def batch(self, size: int) -> np.ndarray:
        return self.rng.integers(0, len(self.images), size)


# --------------------------------------------------------------------------------------------
# digits-features
# --------------------------------------------------------------------------------------------


def build_features(pool: Pool, steps: int, target: Path) -> None:
    from .features import DigitsFeatureNet

    torch.manual_seed(SEED)
    net = DigitsFeatureNet()
    images = torch.from_numpy(pool.images).permute(0, 3, 1, 2)

    def loss_fn(_step: int) -> torch.Tensor:
        index = pool.batch(128)
        batch = images[index]
        shift = np.random.default_rng(_step).integers(-2, 3, size=2)
        batch = torch.roll(batch, shifts=(int(shift[0]), int(shift[1])), dims=(2, 3))
        return F.cross_entropy(net.logits(batch), pool.labels[index])

    net.train()
    train_loop(list(net.parameters()), steps, 2e-3, loss_fn, "features")
    net.eval()
    with torch.no_grad():
        held_out = random_samples(1000, SEED + 99)
        x = torch.from_numpy(np.stack([s.image for s in held_out])).permute(0, 3, 1, 2)
        accuracy = (net.classify(x) == torch.tensor([s.digit for s in held_out])).float().mean()
    log(f"features: accuracy on fresh renderings {accuracy:.3f}")
    net.save(target)


# --------------------------------------------------------------------------------------------
# digits-ldm: VAE, then text encoder + UNet
# --------------------------------------------------------------------------------------------


def make_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=16,
        sample_size=32,
    )


def build_vae(pool: Pool, steps: int, work: Path) -> None:
    torch.manual_seed(SEED)
    vae = make_vae()
    images = to_tensor(pool.images)

    def loss_fn(_step: int) -> torch.Tensor:
        x = images[pool.batch(64)]
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample()).sample
        kl = posterior.kl().mean() / x[0].numel()
        return F.mse_loss(recon, x) + 0.5 * F.l1_loss(recon, x) + 1e-4 * kl

    vae.train()
    train_loop(list(vae.parameters()), steps, 1e-3, loss_fn, "vae")
    vae.eval()
    with torch.no_grad():
        latents = torch.cat(
            [vae.encode(images[i : i + 512]).latent_dist.mode() for i in range(0, 4096, 512)]
        )
    scaling = float(1.0 / latents.std())
    vae.register_to_config(scaling_factor=scaling)
    log(f"vae: latent std {latents.std():.3f} -> scaling_factor {scaling:.4f}")
    vae.save_pretrained(work / "vae", safe_serialization=True)


def sd_scheduler():  # -> EulerDiscreteScheduler
    """Stable Diffusion's noise schedule with its Euler sampler configuration.

    Euler rather than SD's default PNDM: PNDM's multistep extrapolation of guided noise
    predictions drifts into the wrong ink colour with a model this small. The DDIM/PNDM keys of
    SD's config are kept so that ``DDIMScheduler.from_config`` and friends behave as on SD
    (no clipping of predicted latents).
    """
    from diffusers import EulerDiscreteScheduler

    scheduler = EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        steps_offset=1,
        timestep_spacing="leading",
        interpolation_type="linear",
    )
    scheduler.register_to_config(clip_sample=False, set_alpha_to_one=False, skip_prk_steps=True)
    return scheduler


def training_scheduler():  # -> DDPMScheduler
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"
    )


def encode_pool(vae, pool: Pool) -> torch.Tensor:
    """Scaled VAE latents of every pool image (the means: the pool is fixed)."""
    log("ldm: encoding the training pool")
    with torch.no_grad():
        images = to_tensor(pool.images)
        latents = [
            vae.encode(images[i : i + 512]).latent_dist.mode() for i in range(0, len(images), 512)
        ]
    return torch.cat(latents) * vae.config.scaling_factor


class DenoisingLoss:
    """SD's training objective on the pool, with 10% of the prompts dropped for guidance, and
    optionally the grounding loss of :mod:`diffusionscope.core.zoo.grounding` on the kept prompts."""

    def __init__(
        self,
        unet,
        text_encoder,
        tokenizer,
        latents: torch.Tensor,
        pool: Pool,
        recorded: list[torch.Tensor] | None = None,
        grounding_weight: float = GROUNDING_WEIGHT,
    ) -> None:
        """``recorded``: the list :func:`diffusionscope.core.zoo.grounding.recording_cross_attention` fills;
        given, the grounding loss is added."""
        self.unet, self.text_encoder, self.latents, self.pool = unet, text_encoder, latents, pool
        self.ids = tokenizer(
            pool.prompts,
            padding="max_length",
            max_length=MAX_TOKENS,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        self.empty = tokenizer(
            [""], padding="max_length", max_length=MAX_TOKENS, return_tensors="pt"
        ).input_ids[0]
        self.noise_scheduler = training_scheduler()
        self.alphas_cumprod = self.noise_scheduler.alphas_cumprod
        self.generator = torch.Generator().manual_seed(SEED)
        self.recorded = recorded
        self.grounding_weight = grounding_weight
        if recorded is not None:
            from .grounding import ink_masks, word_targets

            self.ink = ink_masks(pool.images)
            self.targets = word_targets(pool.prompts, MAX_TOKENS)

    def __call__(self, _step: int) -> torch.Tensor:
        index = torch.from_numpy(self.pool.batch(64))
        x0 = self.latents[index]
        tokens = self.ids[index].clone()
        drop = torch.rand(len(index), generator=self.generator) < 0.1
        tokens[drop] = self.empty
        noise = torch.randn(x0.shape, generator=self.generator)
        t = torch.randint(0, 1000, (len(index),), generator=self.generator)
        noisy = self.noise_scheduler.add_noise(x0, noise, t)
        context = self.text_encoder(tokens)[0]
        if self.recorded is not None:
            self.recorded.clear()
        # Min-SNR-γ weighting (Hang et al. 2023): converges several times faster on small budgets.
        snr = self.alphas_cumprod[t] / (1 - self.alphas_cumprod[t])
        weight = snr.clamp(max=5.0) / snr
        per_sample = F.mse_loss(self.unet(noisy, t, context).sample, noise, reduction="none")
        loss = (per_sample.mean(dim=(1, 2, 3)) * weight).mean()
        if self.recorded is not None:
            from .grounding import grounding_loss

            kept = ~drop
            maps = [probabilities[kept] for probabilities in self.recorded]
            grounding = grounding_loss(
                maps, self.ink[index][kept], self.targets[index][kept], self.alphas_cumprod[t][kept]
            )
            loss = loss + self.grounding_weight * grounding
        return loss


class ExponentialAverage:
    """EMA copies of the UNet and text encoder; the saved pipeline uses them."""

    def __init__(self, unet, text_encoder, decay: float = 0.999) -> None:
        self.trained = (unet, text_encoder)
        self.pairs = [(copy.deepcopy(m).requires_grad_(False), m) for m in self.trained]
        self.decay = decay

    def __call__(self) -> None:
        with torch.no_grad():
            for ema, model in self.pairs:
                for averaged, current in zip(ema.parameters(), model.parameters(), strict=True):
                    averaged.lerp_(current, 1 - self.decay)

    def models(self) -> tuple:
        return tuple(ema.eval() for ema, _ in self.pairs)


def save_pipeline(vae, text_encoder, tokenizer, unet, target: Path) -> None:
    """Write next to ``target`` first, then swap: a rebuild may read from ``target`` itself."""
    from diffusers import StableDiffusionPipeline

    for name, model in (("vae", vae), ("unet", unet)):  # a fine-tune's source, not this machine's
        model.register_to_config(_name_or_path=f"{target.name}/{name}")
    pipeline = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=sd_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    staging = target.with_name(target.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    pipeline.save_pretrained(staging, safe_serialization=True)
    write_word_vocabulary(staging / "tokenizer", VOCABULARY)  # for slow-tokenizer transformers
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    log(f"ldm: saved {target}")


def train_and_save(
    vae,
    tokenizer,
    average: ExponentialAverage,
    loss_fn: DenoisingLoss,
    steps: int,
    lr: float,
    name: str,
    target: Path,
) -> None:
    """Train the averaged UNet and text encoder together, then save the averages as the
    pipeline. The averages are copied before any processor is tapped, so they hold none."""
    unet, text_encoder = average.trained
    unet.train()
    text_encoder.train()
    parameters = list(unet.parameters()) + list(text_encoder.parameters())
    train_loop(parameters, steps, lr, loss_fn, name, on_step=average)
    ema_unet, ema_text = average.models()
    save_pipeline(vae, ema_text, tokenizer, ema_unet, target)


def build_ldm(pool: Pool, steps: int, work: Path, target: Path) -> None:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(SEED)
    vae_folder = work / "vae"
    if not (vae_folder / "config.json").is_file():
        # An LDM-only rebuild reuses the shipped VAE, so its latents match the shipped scale.
        vae_folder = DIGITS_LDM / "vae"
        log(f"ldm: no VAE in {work}, using the shipped one ({vae_folder})")
    vae = AutoencoderKL.from_pretrained(vae_folder).eval()
    tokenizer = word_tokenizer(work / "tokenizer", VOCABULARY, MAX_TOKENS)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=MAX_TOKENS,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(64, 64),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=64,
        attention_head_dim=4,
        norm_num_groups=16,
    )
    loss_fn = DenoisingLoss(unet, text_encoder, tokenizer, encode_pool(vae, pool), pool)
    average = ExponentialAverage(unet, text_encoder)
    train_and_save(vae, tokenizer, average, loss_fn, steps, 1e-3, "ldm", target)


def build_grounding(pool: Pool, steps: int, target: Path, weight: float = GROUNDING_WEIGHT) -> None:
    """Fine-tune the LDM at ``target`` (the shipped one if absent) with the grounding loss."""
    from diffusers import StableDiffusionPipeline

    from .grounding import recording_cross_attention

    torch.manual_seed(SEED + 1)
    source = target if (target / "model_index.json").is_file() else DIGITS_LDM
    log(f"ground: fine-tuning {source}")
    pipeline = StableDiffusionPipeline.from_pretrained(source)
    vae, unet, text_encoder = pipeline.vae, pipeline.unet, pipeline.text_encoder
    latents = encode_pool(vae, pool)
    average = ExponentialAverage(unet, text_encoder)
    with recording_cross_attention(unet) as recorded:
        loss_fn = DenoisingLoss(
            unet, text_encoder, pipeline.tokenizer, latents, pool, recorded, weight
        )
        train_and_save(
            vae, pipeline.tokenizer, average, loss_fn, steps, GROUNDING_LR, "ground", target
        )


# --------------------------------------------------------------------------------------------
# digits-clip
# --------------------------------------------------------------------------------------------


def build_clip(pool: Pool, steps: int, work: Path, target: Path) -> None:
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTextConfig,
        CLIPVisionConfig,
    )

    torch.manual_seed(SEED)
    tokenizer = word_tokenizer(work / "clip-tokenizer", VOCABULARY, MAX_TOKENS)
    text = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=MAX_TOKENS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    vision = CLIPVisionConfig(
        image_size=32,
        patch_size=4,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
    )
    config = CLIPConfig(
        text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=64
    )
    model = CLIPModel(config)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": 32},
        crop_size={"height": 32, "width": 32},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
    pixels = to_tensor(pool.images)  # the processor's normalisation: (x/255 - 0.5) / 0.5
    ids = tokenizer(
        pool.prompts, padding="max_length", max_length=MAX_TOKENS, return_tensors="pt"
    ).input_ids

    def loss_fn(_step: int) -> torch.Tensor:
        index = torch.from_numpy(pool.batch(128))
        # Distinct prompts only: duplicate captions in a batch would be false negatives.
        _, first = np.unique(np.array(pool.prompts)[index.numpy()], return_index=True)
        index = index[np.sort(first)]
        output = model(input_ids=ids[index], pixel_values=pixels[index], return_loss=True)
        return output.loss

    model.train()
    train_loop(list(model.parameters()), steps, 1e-3, loss_fn, "clip")
    model.eval()
    if target.exists():
        shutil.rmtree(target)
    model.save_pretrained(target, safe_serialization=True)
    processor.save_pretrained(target)
    write_word_vocabulary(target, VOCABULARY)
    log(f"clip: saved {target}")


# --------------------------------------------------------------------------------------------
# reference set and prompts
# --------------------------------------------------------------------------------------------


def build_reference(target: Path, prompts_file: Path) -> None:
    from PIL import Image

    samples = random_samples(REFERENCE_COUNT, SEED + 7)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for index, sample in enumerate(samples):
        Image.fromarray(sample.image).save(target / f"digit-{index:04d}.png", optimize=True)
    labels = [
        {
            "file": f"digit-{i:04d}.png",
            "digit": s.digit,
            "color": s.color,
            "thickness": s.thickness,
            "background": s.background,
            "prompt": s.prompt,
        }
        for i, s in enumerate(samples)
    ]
    (target / "labels.json").write_text(json.dumps(labels, indent=0))
    write_coco_captions(labels, target / CAPTIONS_NAME)
    prompts = [make_prompt(d, c) for d in range(len(DIGIT_WORDS)) for c in COLORS]
    prompts_file.write_text("\n".join(prompts) + "\n")
    log(f"reference: {REFERENCE_COUNT} PNGs in {target}, {len(prompts)} prompts")


CAPTIONS_NAME = DIGITS_CAPTIONS.name


def write_coco_captions(labels: list[dict], target: Path) -> None:
    """The reference as a caption set in the COCO captions format (``--reference-set``): each
    image with two captions, its full prompt and the plain colour-and-digit one."""
    images = [{"id": i + 1, "file_name": label["file"]} for i, label in enumerate(labels)]
    annotations = []
    for i, label in enumerate(labels):
        plain = make_prompt(label["digit"], label["color"])
        for caption in dict.fromkeys((label["prompt"], plain)):
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "caption": caption})
    target.write_text(json.dumps({"images": images, "annotations": annotations}))


STAGES = ("features", "vae", "ldm", "ground", "clip", "reference")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m diffusionscope.core.zoo.build", description=__doc__
    )
    parser.add_argument("--only", default=",".join(STAGES), help="comma list of stages")
    parser.add_argument("--work", default="build/zoo", help="intermediate files")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every step count")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument(
        "--out",
        default=None,
        help="write the models here instead of the shipped zoo (a trial build)",
    )
    args = parser.parse_args(argv)
    stages = [s for s in args.only.split(",") if s]
    unknown = set(stages) - set(STAGES)
    if unknown:
        parser.error(f"unknown stage {sorted(unknown)[0]!r} (stages: {', '.join(STAGES)})")
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    root = ZOO_DIR if args.out is None else Path(args.out)
    root.mkdir(parents=True, exist_ok=True)

    def under_root(path: Path) -> Path:
        return root / path.relative_to(ZOO_DIR)

    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    pool = Pool(TRAIN_POOL, SEED) if set(stages) - {"reference"} else None
    steps = {"features": 1000, "vae": 1500, "ldm": 8000, "ground": 2000, "clip": 1000}
    steps = {k: max(2, int(v * args.scale)) for k, v in steps.items()}
    if "features" in stages:
        build_features(pool, steps["features"], under_root(DIGITS_FEATURES))
    if "vae" in stages:
        build_vae(pool, steps["vae"], work)
    if "ldm" in stages:
        build_ldm(pool, steps["ldm"], work, under_root(DIGITS_LDM))
    if "ground" in stages:
        build_grounding(pool, steps["ground"], under_root(DIGITS_LDM))
    if "clip" in stages:
        build_clip(pool, steps["clip"], work, under_root(DIGITS_CLIP))
    if "reference" in stages:
        build_reference(under_root(DIGITS_REFERENCE), under_root(DIGITS_PROMPTS))
    log(f"built {', '.join(stages)} in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
