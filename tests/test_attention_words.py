"""Prompt words -> token positions, for the CLIP, T5 and Gemma tokenizers of the families, and
the denoiser's text positions -> encoders, read from what the encoders were really given."""

from __future__ import annotations

import pytest

from diffusionscope.core.attention.words import (
    align,
    encoder_inputs,
    prompt_words,
    recording_text_inputs,
    tokenized,
)
from diffusionscope.core.errors import InputError

PROMPT = "a red seven, on a white background."
WORDS = ["a", "red", "seven", "on", "a", "white", "background"]


def _tokenizers():
    from family_pipelines import clip_tokenizer, gemma_tokenizer, t5_tokenizer

    return {"clip": clip_tokenizer(), "t5": t5_tokenizer(), "gemma": gemma_tokenizer()}


@pytest.fixture(scope="module")
def tokenizers():
    return _tokenizers()


def _spelled(tokens: list[str], positions: tuple[int, ...]) -> str:
    """The word the tokens at ``positions`` spell, markers (</w>, ▁) removed."""
    return "".join(tokens[p] for p in positions).replace("</w>", "").replace("▁", "")


@pytest.mark.parametrize("kind", ["clip", "t5", "gemma"])
@pytest.mark.parametrize(
    ("prompt", "words"),
    [(PROMPT, WORDS), ("red-seven", ["red", "seven"]), ("A Red seven", ["A", "Red", "seven"])],
)
def test_every_word_maps_to_its_own_tokens(
    tokenizers, kind: str, prompt: str, words: list[str]
) -> None:
    tokens = prompt_words(tokenizers[kind], prompt, max_length=32)
    assert [w.text for w in tokens.words] == words and not tokens.dropped
    seen: set[int] = set()
    for word in tokens.words:
        assert word.positions and not seen & set(word.positions)  # own tokens, none shared
        seen |= set(word.positions)
        assert _spelled(tokens.tokens, word.positions).lower() == word.text.lower()
    # Punctuation, start, end and padding tokens belong to no word.
    for position, token in enumerate(tokens.tokens):
        if position not in seen:
            assert token.replace("▁", "") in {
                ",",
                ".",
                "-",
                "",
                "<|startoftext|>",
                "<|endoftext|>",
                "</s>",
                "<pad>",
                "<bos>",
            }


def test_clip_punctuation_is_the_unknown_token_and_no_word(tokenizers) -> None:
    """The shipped CLIP vocabulary has no "," or "."; both become <|endoftext|> (id 1), which
    must neither glue onto the next word nor be taken for one."""
    tokens = prompt_words(tokenizers["clip"], PROMPT)
    assert tokens.tokens[:10] == [
        "<|startoftext|>",
        "a</w>",
        "red</w>",
        "seven</w>",
        "<|endoftext|>",
        "on</w>",
        "a</w>",
        "white</w>",
        "background</w>",
        "<|endoftext|>",
    ]
    positions = {w.text: w.positions for w in tokens.words}
    assert positions["seven"] == (3,) and positions["on"] == (5,)
    assert positions["background"] == (8,)


def test_t5_has_no_start_token_and_multi_piece_words(tokenizers) -> None:
    tokens = prompt_words(tokenizers["t5"], PROMPT, max_length=300)
    assert len(tokens.tokens) == 300  # the length the encoder is given, padding included
    positions = [w.positions for w in tokens.words]
    assert positions[0] == (0,) and positions[1] == (1,)  # "▁a", "▁red": no start token
    assert positions[-1] == (7, 8)  # "▁back" + "ground"


def test_truncated_words_are_dropped_by_name(tokenizers) -> None:
    tokens = prompt_words(tokenizers["clip"], "a red seven on a white background " * 3)
    assert len(tokens.tokens) == 16 and tokens.dropped
    assert tokens.words[-1].positions == (14,)  # position 15 is the end token
    with pytest.raises(InputError, match="'cat' is not a word of the prompt"):
        tokens.word("cat")


def test_prompt_found_after_an_instruction_and_lower_cased(tokenizers) -> None:
    """Sana prefixes an instruction, PixArt lower-cases: words are found in the text the
    tokenizer was given, at its end."""
    text = "Describe a red seven in detail. User Prompt: " + PROMPT.lower()
    encoded = tokenized(tokenizers["gemma"], text, "tokenizer")
    encoded.encoders = ["text_encoder"]
    tokens = align(PROMPT.upper(), [encoded], len(encoded.ids))
    first_red = text.index("red")
    red = tokens.word("RED").positions
    assert all(encoded.offsets[p][0] > first_red for p in red)  # not the instruction's "red"


@pytest.mark.parametrize(
    ("name", "sources"),
    [
        ("sd3", [(("text_encoder", "text_encoder_2"), 0, 16), (("text_encoder_3",), 16, 256)]),
        ("flux_dev", [(("text_encoder_2",), 0, 512)]),
        ("pixart_alpha", [(("text_encoder",), 0, 120)]),
        ("pixart_sigma", [(("text_encoder",), 0, 300)]),
        ("sana", [(("text_encoder",), 0, 300)]),
        ("sdxl", [(("text_encoder", "text_encoder_2"), 0, 16)]),
    ],
)
def test_denoiser_text_positions_come_from_the_encoders_really_used(
    family_dir, name: str, sources: list
) -> None:
    """SD3: CLIP (both, feature-wise) then T5 in one sequence; Flux: T5 only; PixArt-Σ: 300
    positions; Sana: the first and last 299 of its instruction-prefixed prompt."""
    from diffusers import DiffusionPipeline

    pipeline = DiffusionPipeline.from_pretrained(family_dir(name))
    with recording_text_inputs(pipeline) as records:
        embeddings = pipeline.encode_prompt(prompt=PROMPT, **_encode_kwargs(name))[0]
    length = embeddings.shape[1]  # the text sequence the denoiser would be given
    tokens = align(PROMPT, encoder_inputs(records, PROMPT), length)
    assert [(s.encoders, s.start, s.length) for s in tokens.sources] == sources
    assert len(tokens.tokens) == length
    assert [w.text for w in tokens.words] == WORDS and not tokens.dropped
    for word in tokens.words:  # in every encoder's run (SD3: in CLIP's and in T5's)
        for source in tokens.sources:
            inside = [p for p in word.positions if source.start <= p < source.start + source.length]
            assert _spelled(tokens.tokens, tuple(inside)).lower() == word.text
    if name == "sana":
        assert tokens.sources[0].given > 300 and tokens.tokens[0] == "<bos>"
    # The tokenizer classes are restored: calling them records nothing any more.
    before = len(records.tokenizer_calls)
    pipeline.tokenizer("a red seven")
    assert len(records.tokenizer_calls) == before


def _encode_kwargs(name: str) -> dict:
    if name in ("sd3",):
        return {"prompt_2": None, "prompt_3": None, "device": "cpu"}
    if name in ("sdxl",):
        return {"device": "cpu", "num_images_per_prompt": 1, "do_classifier_free_guidance": True}
    if name == "sana":  # the instruction SanaPipeline.__call__ prefixes by default
        import inspect

        from diffusers import SanaPipeline

        parameters = inspect.signature(SanaPipeline.__call__).parameters
        return {
            "device": "cpu",
            "complex_human_instruction": parameters["complex_human_instruction"].default,
        }
    return {"device": "cpu"}
