"""A word-level CLIP BPE vocabulary for a closed prompt grammar.

``CLIPTokenizer`` needs ``vocab.json`` and ``merges.txt``; a full CLIP vocabulary (49k tokens)
would make the text encoder's embedding table larger than the whole rest of the model. Here every
word of the grammar merges into one ``</w>`` token and single letters remain as a fallback, so
an unknown word still tokenizes (into letters) instead of failing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

LETTERS = "abcdefghijklmnopqrstuvwxyz"
SPECIAL = ("<|startoftext|>", "<|endoftext|>")


def _bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """CLIP's byte-pair encoding of one word: always merge the best-ranked adjacent pair."""
    pieces = list(word[:-1]) + [word[-1] + "</w>"]
    while len(pieces) > 1:
        pairs = [
            (ranks.get(pair, len(ranks)), i)
            for i, pair in enumerate(zip(pieces[:-1], pieces[1:], strict=True))
        ]
        rank, i = min(pairs)
        if rank == len(ranks):
            break
        pieces = [*pieces[:i], pieces[i] + pieces[i + 1], *pieces[i + 2 :]]
    return pieces


def word_merges(words: Iterable[str]) -> list[tuple[str, str]]:
    """Merges, in rank order, under which every word encodes to a single token.

    Each word gets new merges only where the earlier ones leave it stuck, and a new merge has
    the lowest rank, so it never changes how an earlier word encodes (an earlier word always
    has one of its own, better-ranked merges available until it is whole).
    """
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    for word in dict.fromkeys(words):
        while len(pieces := _bpe(word, ranks)) > 1:
            ranks[(pieces[0], pieces[1])] = len(merges)
            merges.append((pieces[0], pieces[1]))
    return merges


def write_word_vocabulary(folder: Path, words: Iterable[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tokens = list(SPECIAL) + list(LETTERS) + [f"{c}</w>" for c in LETTERS]
    merges = word_merges(words)
    tokens += [a + b for a, b in merges if a + b not in tokens]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab, indent=0))
    lines = [f"{a} {b}" for a, b in merges]
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(lines) + "\n")


def word_tokenizer(folder: Path, words: Iterable[str], max_length: int):  # -> CLIPTokenizer
    """Write the vocabulary to ``folder`` and return a CLIPTokenizer reading it."""
    from transformers import CLIPTokenizer

    write_word_vocabulary(folder, words)
    return CLIPTokenizer(
        str(folder / "vocab.json"),
        str(folder / "merges.txt"),
        model_max_length=max_length,
        pad_token="<|endoftext|>",
    )
