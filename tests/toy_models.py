"""Toy encoders' one vector rule for tests: a bag of hashed words (integer counts, so every float32 dot
product is exact and any two runs agree bit for bit)."""

from __future__ import annotations

import zlib

import numpy as np


def bag_of_words(texts: list[str], dim: int) -> np.ndarray:
    """One float32 row per text: word counts, each word at ``crc32(word) % dim``."""
    vectors = np.zeros((len(texts), dim), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in text.lower().split():
            vectors[i, zlib.crc32(word.encode()) % dim] += 1
    return vectors
