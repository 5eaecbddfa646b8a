"""Captions -> token ids: one token per word of the captions' closed vocabulary.

The captions come from a small grammar (:mod:`samteach.text.captions`): class names, colour and
texture words, "the", "in", "on". A word-level vocabulary covers it exactly, with tokens a
student can read, where CLIP's byte-pair encoding (49k tokens) would be mostly unused and split
nothing here. The price: a word outside the vocabulary cannot be encoded -- it is refused with an
error naming it, instead of being guessed at.
"""

import re

import torch

from ..data.colors import COLOR_NAMES
from ..data.generic import SHAPES
from ..data.scenes import CLASS_NAMES
from .captions import TEXTURE_WORDS

__all__ = ["WordTokenizer", "caption_words"]


def caption_words() -> tuple[str, ...]:
    """Every word a caption of the synthetic scenes can use, sorted."""
    words = {"the", "in", "on", *CLASS_NAMES, *SHAPES, *COLOR_NAMES, *TEXTURE_WORDS.values()}
    return tuple(sorted(words))


class WordTokenizer:
    """Word <-> id over a fixed vocabulary; id 0 pads, 1 starts and 2 ends a caption."""

    PAD, BOS, EOS = 0, 1, 2

    def __init__(self, words: tuple[str, ...] | None = None) -> None:
        self.words = ("<pad>", "<bos>", "<eos>", *(caption_words() if words is None else words))
        self.ids = {word: i for i, word in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, texts: str | list[str], length: int) -> torch.Tensor:
        """A caption or a list of them -> (B, length) int64 ids: <bos> words <eos> <pad>..."""
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"text must be a string or a list of strings; got "
                            f"{type(texts).__name__}")
        rows = []
        for text in texts:
            words = re.findall(r"[a-z]+", text.lower())
            if not words:
                raise ValueError(f"text {text!r} holds no word: say what to segment, e.g. "
                                 "'the blue liquid'")
            unknown = [w for w in words if w not in self.ids]
            if unknown:
                raise ValueError(f"text {text!r}: the tokenizer does not know "
                                 f"{', '.join(map(repr, unknown))}; it knows the captions' "
                                 f"{len(self.words) - 3} words, e.g. "
                                 f"{', '.join(self.words[3:9])}")
            if len(words) + 2 > length:
                raise ValueError(f"text {text!r} has {len(words)} words; at most {length - 2} "
                                 "fit")
            ids = [self.BOS, *(self.ids[w] for w in words), self.EOS]
            rows.append(ids + [self.PAD] * (length - len(ids)))
        return torch.tensor(rows, dtype=torch.long)

    def decode(self, ids: torch.Tensor) -> list[str]:
        """(B, L) ids -> the captions (special tokens dropped)."""
        return [" ".join(self.words[i] for i in row.tolist() if i > self.EOS) for row in ids]
