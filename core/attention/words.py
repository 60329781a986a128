"""Prompt words, not token pieces: which of the denoiser's text positions hold each word.

Every tokenizer these pipelines use marks words differently (CLIP's BPE ends a word with
``</w>`` and maps unknown characters to ``<|endoftext|>``, T5's SentencePiece starts one with
``▁``, Gemma glues the space to the next word and starts with ``<bos>``), and the pipelines
feed their encoders differently: SD pads CLIP to 77 tokens, PixArt-Σ pads T5 to 300, SD3 joins
CLIP's 77 tokens and T5's 256 into one sequence, Flux gives the denoiser T5's tokens only, and
Sana prefixes the prompt with a long instruction and keeps the first and last 299 positions.
Nothing here assumes any of that. During generation :func:`recording_text_inputs` records what
each tokenizer was asked to tokenize and which ids each text encoder was really given; after
it, the same text is tokenized again with the fast tokenizer's character offsets, and:

- a word is a run of letters or digits in the prompt (``red-seven`` is two words; a comma or a
  full stop is no word), and its tokens are those whose character span overlaps it, so
  punctuation, start, end and padding tokens belong to no word;
- the denoiser's text positions are matched to the encoders by length: the run of encoders
  whose given lengths add up to the denoiser's text length (SD3: CLIP then T5; Flux: T5),
  encoders that tokenise alike (SDXL's and SD3's two CLIPs, joined feature-wise) counting once;
  a single encoder longer than the denoiser's text gives its first and last positions
  (Sana's selection), and a shortfall is padding no encoder produced (SD3 without T5).

The fast tokenizer is the library's (``return_offsets_mapping``); a slow one is replaced by the
fast one from the same folder.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError

#: A word: letters or digits, an inner apostrophe allowed ("don't"); punctuation is no word.
WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")

STOP_WORDS = frozenset({"a", "an", "the", "on", "of", "in", "with", "and", "at", "to"})


@dataclass(frozen=True)
class Word:
    text: str
    positions: tuple[int, ...]  # the denoiser's text positions holding this word's tokens


@dataclass(frozen=True)
class TextSource:
    """A run of the denoiser's text positions and the encoder(s) whose tokens fill it."""

    encoders: tuple[str, ...]  # e.g. ("text_encoder", "text_encoder_2"), empty for padding
    tokenizer: str
    start: int  # first denoiser position
    length: int  # denoiser positions in the run
    given: int  # length of the sequence the encoder was given

    def describe(self) -> str:
        where = f"positions {self.start}-{self.start + self.length - 1}"
        if not self.encoders:
            return f"{where}: padding no encoder produced"
        kept = "" if self.length == self.given else f" (first and last of {self.given} given)"
        return f"{where}: {' + '.join(self.encoders)} tokens ({self.tokenizer}){kept}"

    def to_json(self) -> dict[str, Any]:
        return {
            "encoders": list(self.encoders),
            "tokenizer": self.tokenizer,
            "start": self.start,
            "length": self.length,
            "given": self.given,
        }


@dataclass(frozen=True)
class PromptTokens:
    words: list[Word]
    dropped: list[str]  # words with no position in the denoiser's text (truncated away)
    tokens: list[str]  # the token at every denoiser text position ("" for padding)
    sources: list[TextSource] = field(default_factory=list)

    @property
    def content_words(self) -> list[Word]:
        """The default words to show: all but articles and prepositions."""
        content = [w for w in self.words if w.text.lower() not in STOP_WORDS]
        return content or list(self.words)

    def word(self, text: str) -> Word:
        for exact in (True, False):
            for word in self.words:
                if word.text == text if exact else word.text.lower() == text.lower():
                    return word
        names = ", ".join(w.text for w in self.words) + (
            f"; dropped: {', '.join(self.dropped)}" if self.dropped else ""
        )
        raise InputError(f"--words: {text!r} is not a word of the prompt (words: {names})")


def prompt_spans(prompt: str) -> list[tuple[str, int, int]]:
    """``(word, start, end)`` for every word of ``prompt``."""
    return [(m.group(), m.start(), m.end()) for m in WORD.finditer(prompt)]


# --------------------------------------------------------------------------------------------
# One encoder's input, with character offsets
# --------------------------------------------------------------------------------------------


@dataclass
class EncoderInput:
    """The token sequence one text encoder was given, and where each token came from."""

    encoders: list[str]
    tokenizer: str
    text: str
    ids: list[int]
    tokens: list[str]
    offsets: list[tuple[int, int]]  # character span of each token in ``text``; (0, 0) special


def _fast(tokenizer: Any) -> Any:
    if getattr(tokenizer, "is_fast", False):
        return tokenizer
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(tokenizer.name_or_path, use_fast=True)
    except Exception as error:  # noqa: BLE001 -- any failure means: no offsets to be had
        raise InputError(
            f"tokenizer {tokenizer.name_or_path!r}: no fast tokenizer for character "
            f"offsets ({type(error).__name__})"
        ) from None


def tokenized(tokenizer: Any, text: str, name: str = "tokenizer", **kwargs: Any) -> EncoderInput:
    """``text`` tokenized as ``tokenizer(text, **kwargs)`` does, with character offsets."""
    fast = _fast(tokenizer)
    kwargs = {k: v for k, v in kwargs.items() if k not in ("return_tensors", "text")}
    encoded = fast(text, return_offsets_mapping=True, **kwargs)
    ids = list(encoded["input_ids"])
    offsets = [tuple(map(int, span)) for span in encoded["offset_mapping"]]
    return EncoderInput([], name, text, ids, fast.convert_ids_to_tokens(ids), offsets)


def _prompt_in_text(prompt: str, text: str) -> dict[int, tuple[int, int]]:
    """Where each prompt word lies in ``text`` (the text a tokenizer was given, which may
    lower-case the prompt, clean it, or prefix an instruction): word index -> span."""
    spans = prompt_spans(prompt)
    needle = prompt.strip()
    lead = len(prompt) - len(prompt.lstrip())
    folds = len(text.lower()) == len(text) and len(needle.lower()) == len(needle)
    haystack, pin = (text.lower(), needle.lower()) if folds else (text, needle)
    found = haystack.rfind(pin) if pin else -1
    if found >= 0:
        shift = found - lead
        return {i: (start + shift, end + shift) for i, (_, start, end) in enumerate(spans)}
    # Cleaned beyond recognition as a substring: match the words in order.
    theirs = prompt_spans(text)
    matcher = difflib.SequenceMatcher(
        None, [w.lower() for w, _, _ in spans], [w.lower() for w, _, _ in theirs], autojunk=False
    )
    placed: dict[int, tuple[int, int]] = {}
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            _, start, end = theirs[block.b + k]
            placed[block.a + k] = (start, end)
    return placed


def word_tokens(prompt: str, encoded: EncoderInput) -> list[list[int]]:
    """For each word of ``prompt``, the positions of ``encoded`` whose characters overlap it."""
    placed = _prompt_in_text(prompt, encoded.text)
    out: list[list[int]] = []
    for index in range(len(prompt_spans(prompt))):
        span = placed.get(index)
        positions = []
        if span is not None:
            for position, (start, end) in enumerate(encoded.offsets):
                if end > start and start < span[1] and end > span[0]:
                    positions.append(position)
        out.append(positions)
    return out


# --------------------------------------------------------------------------------------------
# What the encoders were given, recorded during generation
# --------------------------------------------------------------------------------------------


@dataclass
class TextRecords:
    """Every tokenizer call (name, tokenizer, texts, kwargs, ids) and encoder call (name, ids
    per batch row or None when unreadable, length) of one generation, in call order."""

    tokenizer_calls: list[tuple[str, Any, list[str], dict[str, Any], list[list[int]]]] = field(
        default_factory=list
    )
    encoder_calls: list[tuple[str, list[list[int]] | None, int]] = field(default_factory=list)


def _id_rows(ids: Any) -> list[list[int]] | None:
    if ids is None:
        return None
    if hasattr(ids, "is_meta") and ids.is_meta:
        return None
    rows = ids.tolist() if hasattr(ids, "tolist") else list(ids)
    return rows if rows and isinstance(rows[0], list) else [rows]


@contextlib.contextmanager
def recording_text_inputs(pipeline: Any) -> Iterator[TextRecords]:
    """Record the pipeline's tokenizer calls and what its text encoders are given."""
    records = TextRecords()
    components = getattr(pipeline, "components", {}) or {}
    tokenizers = {
        id(v): (k, v) for k, v in components.items() if k.startswith("tokenizer") and v is not None
    }
    encoders = {
        k: v
        for k, v in components.items()
        if k.startswith("text_encoder") and hasattr(v, "register_forward_pre_hook")
    }
    classes = {type(v) for _, v in tokenizers.values()}
    originals = {cls: cls.__call__ for cls in classes}
    own = {cls: cls.__dict__.get("__call__") for cls in classes}

    def recorder(original: Any) -> Any:
        def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
            output = original(self, *args, **kwargs)
            if id(self) in tokenizers:
                text = args[0] if args else kwargs.get("text")
                texts = [text] if isinstance(text, str) else list(text or [])
                rows = _id_rows(output.get("input_ids") if hasattr(output, "get") else None)
                if rows is not None and all(isinstance(t, str) for t in texts):
                    records.tokenizer_calls.append(
                        (tokenizers[id(self)][0], self, texts, dict(kwargs), rows)
                    )
            return output

        return __call__

    handles = []
    for name, encoder in encoders.items():

        def before(_module: Any, args: tuple, kwargs: dict, name: str = name) -> None:
            ids = args[0] if args else kwargs.get("input_ids")
            if ids is not None and hasattr(ids, "shape"):
                records.encoder_calls.append((name, _id_rows(ids), int(ids.shape[-1])))

        handles.append(encoder.register_forward_pre_hook(before, with_kwargs=True))
    for cls in classes:
        cls.__call__ = recorder(originals[cls])
    try:
        yield records
    finally:
        for cls in classes:
            if own[cls] is None:
                del cls.__call__
            else:
                cls.__call__ = own[cls]
        for handle in handles:
            handle.remove()


def encoder_inputs(records: TextRecords, prompt: str) -> list[EncoderInput]:
    """One :class:`EncoderInput` per text encoder, in the order they were first called: the
    call whose text carries the prompt, re-tokenized with offsets."""
    chosen: dict[str, EncoderInput] = {}
    fallback: dict[str, EncoderInput] = {}
    for name, rows, _length in records.encoder_calls:
        if name in chosen or rows is None:
            continue
        for row in rows:
            for tok_name, tokenizer, texts, kwargs, tok_rows in records.tokenizer_calls:
                if row not in tok_rows or tok_rows.index(row) >= len(texts):
                    continue
                text = texts[tok_rows.index(row)]
                encoded = tokenized(tokenizer, text, tok_name, **kwargs)
                if encoded.ids != row:
                    raise InputError(
                        f"{tok_name}: re-tokenizing the prompt gave other ids than {name} was given"
                    )
                encoded.encoders = [name]
                if any(word_tokens(prompt, encoded)):
                    chosen.setdefault(name, encoded)
                else:
                    fallback.setdefault(name, encoded)
                break
            if name in chosen:
                break
    order = list(dict.fromkeys(name for name, _, _ in records.encoder_calls))
    return [
        chosen.get(name) or fallback[name] for name in order if name in chosen or name in fallback
    ]


def _collapse(inputs: list[EncoderInput]) -> list[EncoderInput]:
    """Encoders that tokenised the prompt alike and follow each other count once: their
    states are joined feature-wise, position by position (SDXL, SD3's two CLIPs)."""
    out: list[EncoderInput] = []
    for item in inputs:
        last = out[-1] if out else None
        if last and len(last.ids) == len(item.ids) and last.offsets == item.offsets:
            last.encoders = [*last.encoders, *item.encoders]
        else:
            out.append(
                EncoderInput(
                    list(item.encoders),
                    item.tokenizer,
                    item.text,
                    item.ids,
                    item.tokens,
                    item.offsets,
                )
            )
    return out


def _layout(
    blocks: list[EncoderInput], text_tokens: int
) -> list[tuple[EncoderInput | None, list[int]]]:
    """``(block, encoder positions)`` runs that fill the denoiser's ``text_tokens`` positions."""
    lengths = [len(b.ids) for b in blocks]
    for end in reversed(range(len(blocks))):  # the latest-ending run: T5 after CLIP
        for start in reversed(range(end + 1)):
            if sum(lengths[start : end + 1]) == text_tokens:
                return [(b, list(range(len(b.ids)))) for b in blocks[start : end + 1]]
    if len(blocks) == 1 and lengths[0] > text_tokens > 0:
        # SanaPipeline keeps position 0 and the last text_tokens - 1 of the instruction-prefixed
        # prompt.
        kept = [0, *range(lengths[0] - text_tokens + 1, lengths[0])]
        return [(blocks[0], kept)]
    if blocks and sum(lengths) < text_tokens:
        return [(b, list(range(len(b.ids)))) for b in blocks] + [
            (None, [-1] * (text_tokens - sum(lengths)))
        ]
    given = ", ".join(f"{'+'.join(b.encoders)} {len(b.ids)}" for b in blocks) or "none"
    raise InputError(
        f"cannot tell which text encoder's tokens the denoiser's {text_tokens} text "
        f"positions are (encoders were given: {given})"
    )


def align(prompt: str, inputs: list[EncoderInput], text_tokens: int) -> PromptTokens:
    """Map the prompt's words to the denoiser's ``text_tokens`` positions."""
    spans = prompt_spans(prompt)
    if not spans:
        raise InputError(f"--prompt: {prompt!r} has no words to map")
    positions: list[list[int]] = [[] for _ in spans]
    tokens: list[str] = []
    sources: list[TextSource] = []
    for block, kept in _layout(_collapse(inputs), text_tokens):
        start = len(tokens)
        if block is None:
            tokens += [""] * len(kept)
            sources.append(TextSource((), "", start, len(kept), 0))
            continue
        where = {encoder_position: start + k for k, encoder_position in enumerate(kept)}
        for index, owned in enumerate(word_tokens(prompt, block)):
            positions[index] += [where[p] for p in owned if p in where]
        tokens += [block.tokens[p] for p in kept]
        sources.append(
            TextSource(tuple(block.encoders), block.tokenizer, start, len(kept), len(block.ids))
        )
    words = [
        Word(text, tuple(sorted(p))) for (text, _, _), p in zip(spans, positions, strict=True) if p
    ]
    dropped = [text for (text, _, _), p in zip(spans, positions, strict=True) if not p]
    return PromptTokens(words, dropped, tokens, sources)


def prompt_words(tokenizer: Any, prompt: str, max_length: int | None = None) -> PromptTokens:
    """The prompt as one tokenizer pads and truncates it for its encoder (SD's CLIP call),
    with every position of that sequence as the denoiser's text."""
    if not prompt or not prompt.strip():
        raise InputError("--prompt: empty prompt; the attention mode maps the prompt's words")
    length = int(max_length or tokenizer.model_max_length)
    encoded = tokenized(tokenizer, prompt, padding="max_length", max_length=length, truncation=True)
    encoded.encoders = ["text_encoder"]
    return align(prompt, [encoded], len(encoded.ids))
