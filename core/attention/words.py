"""Prompt words, not BPE pieces: which token positions of the text encoder's input hold each
word. CLIP's BPE marks the last piece of every word with ``</w>``, so pieces are merged until
that mark. Position 0 is the start token; after the words come the end and padding tokens,
which are kept in the raw maps but are not words.

SDXL's two tokenizers split a prompt identically (both are CLIP BPE) and their embeddings are
concatenated per token, so the first tokenizer's positions serve both encoders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diffusionscope.core.errors import InputError


@dataclass(frozen=True)
class Word:
    text: str
    positions: tuple[int, ...]  # token positions in the encoder input


STOP_WORDS = frozenset({"a", "an", "the", "on", "of", "in", "with", "and", "at", "to", ",", "."})


@dataclass(frozen=True)
class PromptTokens:
    words: list[Word]
    dropped: list[str]  # words past the tokenizer's limit, truncated away
    tokens: list[str]  # every position of the encoder input, specials and padding included

    @property
    def content_words(self) -> list[Word]:
        """The default words to show: all but articles and prepositions."""
        content = [w for w in self.words if w.text not in STOP_WORDS]
        return content or list(self.words)

    def word(self, text: str) -> Word:
        for word in self.words:
            if word.text == text:
                return word
        raise InputError(
            f"--words: {text!r} is not a word of the prompt (words: "
            f"{', '.join(w.text for w in self.words)})"
        )


def prompt_words(tokenizer: Any, prompt: str) -> PromptTokens:
    if not prompt or not prompt.strip():
        raise InputError("--prompt: empty prompt; the attention mode maps the prompt's words")
    limit = int(tokenizer.model_max_length)
    pieces = tokenizer.tokenize(prompt)
    words: list[Word] = []
    dropped: list[str] = []
    current: list[int] = []
    for offset, piece in enumerate(pieces):
        current.append(offset + 1)
        if piece.endswith("</w>") or offset == len(pieces) - 1:
            text = "".join(pieces[p - 1] for p in current).replace("</w>", "")
            # The encoder keeps limit-1 positions for the start token and words, then the end.
            if current[-1] <= limit - 2:
                words.append(Word(text, tuple(current)))
            else:
                dropped.append(text)
            current = []
    padded = tokenizer(prompt, truncation=True, max_length=limit, padding="max_length").input_ids
    return PromptTokens(words, dropped, tokenizer.convert_ids_to_tokens(padded))
