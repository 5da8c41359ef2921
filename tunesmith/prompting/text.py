"""A prompt's text with the spans already explained, and the facts read from it.

:class:`PromptText` keeps the normalised text (NFKC: full-width digits and punctuation become ASCII, so "１２０" reads
as 120) and marks each character once a rule or a phrase has used it; what is left over is the material for the
embedding matcher and the "words not used" of the interpretation. :class:`Fact` is one thing the prompt says,
with where it came from and how strongly (:data:`EXPLICIT` ... :data:`DEFAULT`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# How strongly a fact was said; a stronger fact wins, two different ones of the same strength (explicit or named)
# contradict each other.
GIVEN = 5  # an explicit parameter passed beside the prompt
EXPLICIT = 4  # an exact rule: "92 bpm", "in D minor", "3/4", "16 bars"
NAMED = 3  # the prompt names it: a style, an instrument, a tempo word ("slow")
IMPLIED = 2  # a named mood, scene or ensemble implies it (sad -> minor)
SIMILAR = 1  # the embedding model found words like an entry
DEFAULT = 0  # a musician's default for what was said (bossa nova -> about 128 BPM)
LEVEL_NAMES = {GIVEN: "given", EXPLICIT: "rule", NAMED: "vocabulary", IMPLIED: "vocabulary", SIMILAR: "embedding",
               DEFAULT: "default"}

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


@dataclass(frozen=True)
class Fact:
    """One thing the prompt says: ``name`` (key, tempo, style ...), ``value``, the words it came from, the rule or
    vocabulary entry that read it (``source``), its strength (``level``) and ``confidence`` (0..1)."""

    name: str
    value: Any
    words: tuple[str, ...]
    source: str
    level: int
    confidence: float = 1.0
    span: tuple[int, int] | None = None


class PromptText:
    """The normalised prompt and which of its characters are explained."""

    def __init__(self, raw: str) -> None:
        self.raw = raw
        normal = unicodedata.normalize("NFKC", raw)
        # lower-case character by character so that spans stay aligned with ``self.text``
        self.text = normal
        self.lower = "".join(c.lower() if len(c.lower()) == 1 else c for c in normal)
        self.used = [False] * len(normal)

    def is_free(self, start: int, end: int) -> bool:
        return not any(self.used[start:end])

    def take(self, start: int, end: int) -> str:
        """Mark [start, end) as explained; returns the words as written."""
        for i in range(start, end):
            self.used[i] = True
        return self.text[start:end].strip(" ,.;:!?，。；：！？")

    def free_matches(self, pattern: re.Pattern[str]) -> Iterator[re.Match[str]]:
        """Matches of ``pattern`` on the lower-cased text that touch no explained character (checked lazily, so a
        handler that takes a match hides the overlapping later ones)."""
        for match in pattern.finditer(self.lower):
            if self.is_free(*match.span()):
                yield match

    def leftover(self) -> str:
        """The text with explained characters blanked out."""
        return "".join(" " if used else c for c, used in zip(self.lower, self.used, strict=True))
