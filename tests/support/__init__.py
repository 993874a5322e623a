"""Helpers shared by test modules (fixtures live in the conftest files)."""

from __future__ import annotations


def plain(output: str) -> str:
    """What a command printed, as one line of words: box-drawing characters dropped, whitespace collapsed."""
    return " ".join(output.translate({c: " " for c in range(0x2500, 0x2580)}).split())
