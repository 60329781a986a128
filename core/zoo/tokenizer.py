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


def write_word_vocabulary(folder: Path, words: Iterable[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tokens = list(SPECIAL) + list(LETTERS) + [f"{c}</w>" for c in LETTERS]
    merges: list[str] = []
    for word in dict.fromkeys(words):
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:
            merges.append(f"{pieces[0]} {pieces[1]}")
            merged = pieces[0] + pieces[1]
            if merged not in tokens:
                tokens.append(merged)
            pieces = [merged, *pieces[2:]]
    vocab = {token: index for index, token in enumerate(tokens)}
    (folder / "vocab.json").write_text(json.dumps(vocab, indent=0))
    unique = list(dict.fromkeys(merges))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(unique) + "\n")


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
