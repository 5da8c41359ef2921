"""The exact matcher: the vocabulary's phrases found in a prompt, longest first, plus near misses of long words.

Text and phrases are cut into units: an English word (letters, digits and ``&'#+``) or one Chinese character, so
"hip-hop" and "hip hop" are the same phrase and Chinese needs no word segmentation ("下雨夜晚的安静氛围音乐" reads
"下雨夜晚", "安静", "氛围音乐"). The phrases chosen cover the most units with the fewest phrases; a final English
"s" is forgiven ("pianos"). A word of six letters or more that no phrase matches is compared with the vocabulary's
single words of six letters or more within one edit (two from eight letters), the first letter(s) equal:
"orchestal" reads as "orchestral", "saxofone" as "saxophone".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise

from tunesmith.prompting.text import PromptText
from tunesmith.prompting.vocabulary import Meaning, Vocabulary

_UNIT = re.compile(r"[a-z0-9][a-z0-9&'#+]*|[\u3400-\u9fff\uf900-\ufaff]")
MAX_UNITS = 8
# Words that turn the tracks or instruments after them off ("no drums") or make them the only ones ("just piano");
# "only"/"alone" after a list does the same for the list before it. A scope ends at punctuation (and, in Chinese,
# at 的).
NEGATIONS = frozenset({"no", "without", "minus", "sans", "不要", "没有", "无", "不带", "去掉", "别"})
ONLY_BEFORE = frozenset({"just", "only", "solely", "只要", "只有", "仅", "就要", "只"})
ONLY_AFTER = frozenset({"only", "alone", "而已"})
_SCOPE_END = re.compile(r"[,;.!?:，。；！？：\n]|的")


def units_of(text: str) -> list[tuple[str, int, int]]:
    """(unit, start, end) of each unit of lower-cased ``text``."""
    return [(m.group(0), m.start(), m.end()) for m in _UNIT.finditer(text)]


def phrase_key(phrase: str) -> tuple[str, ...]:
    return tuple(u for u, _, _ in units_of(phrase.lower()))


@dataclass(frozen=True)
class PhraseMatch:
    """A vocabulary phrase found in the prompt: its words as written, its span, meanings, and how it matched."""

    phrase: str
    words: str
    start: int
    end: int
    meanings: tuple[Meaning, ...]
    how: str = "exact"  # "exact" | "plural" | "near (edit distance N)"
    scope: str = ""  # "" | "without" | "only"

    @property
    def confidence(self) -> float:
        return 1.0 if self.how in ("exact", "plural") else 0.8


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein distance (adjacent transpositions), or limit + 1 once it is certainly larger."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


NEAR_MIN = 6  # shorter words are too often other real words ("flight" is not "fight")


def _allowed(word: str) -> int:
    """Edits forgiven in a word of this length: one from six letters, two from eight."""
    return 2 if len(word) >= 8 else 1


def _deletions(word: str, depth: int) -> set[str]:
    found, frontier = {word}, {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1:] for w in frontier for i in range(len(w))}
        found |= frontier
    return found


class Lexicon:
    """The vocabulary's phrases keyed by their units, and an index of its long words for near misses."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self.by_units: dict[tuple[str, ...], tuple[str, list[Meaning]]] = {}
        for phrase, meanings in vocabulary.phrases.items():
            key = phrase_key(phrase)
            if not key:
                continue
            _, known = self.by_units.setdefault(key, (phrase, []))
            known.extend(m for m in meanings if m not in known)
        self.longest = min(MAX_UNITS, max(len(k) for k in self.by_units))

    @cached_property
    def _near_index(self) -> dict[str, set[str]]:
        index: dict[str, set[str]] = {}
        for key in self.by_units:
            if len(key) == 1 and key[0].isascii() and key[0].isalpha() and len(key[0]) >= NEAR_MIN:
                for variant in _deletions(key[0], _allowed(key[0])):
                    index.setdefault(variant, set()).add(key[0])
        return index

    def _lookup(self, units: tuple[str, ...]) -> tuple[str, list[Meaning], str] | None:
        found = self.by_units.get(units)
        if found:
            return found[0], found[1], "exact"
        last = units[-1]
        for cut in (1, 2):
            if last.isascii() and last.endswith("s"[:1] if cut == 1 else "es") and len(last) > cut + 2:
                found = self.by_units.get((*units[:-1], last[:-cut]))
                if found:
                    return found[0], found[1], "plural"
        return None

    def near(self, word: str) -> tuple[str, int] | None:
        """The vocabulary word near ``word`` (see :func:`_allowed`), with its distance, if there is one."""
        if len(word) < NEAR_MIN or not word.isascii() or not word.isalpha() or word in self.vocabulary.fillers_en:
            return None
        depth = _allowed(word)
        candidates = set().union(*(self._near_index.get(v, set()) for v in _deletions(word, depth)))
        scored = sorted((_edit_distance(word, c, _allowed(c)), c) for c in candidates
                        if c[:_allowed(c)] == word[:_allowed(c)])  # typos rarely hit the first letters
        scored = [(d, c) for d, c in scored if d <= min(_allowed(c), depth)]
        if not scored or any(_edit_distance(word, f, scored[0][0]) <= scored[0][0]
                             for f in self.vocabulary.fillers_en if abs(len(f) - len(word)) <= scored[0][0]):
            return None  # nothing near, or a filler word is as near ("somthing" is "something", not "soothing")
        return scored[0][1], scored[0][0]

    def match(self, text: PromptText) -> list[PhraseMatch]:
        """Every phrase in the free part of ``text``, taking their characters.

        The phrases are chosen to cover as many units as possible, then with as few phrases as possible (so the
        longer phrase wins): "钢琴和弦乐" reads "钢琴" + "弦乐" (piano, strings), not "和弦" (chords).
        """
        units = [u for u in units_of(text.lower) if text.is_free(u[1], u[2])]
        n = len(units)
        # best[i] = (units covered, -phrases used) from unit i on; choice[i] = (length, lookup) or None to skip
        best: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        choice: list[tuple[int, tuple[str, list[Meaning], str]] | None] = [None] * (n + 1)
        for i in range(n - 1, -1, -1):
            best[i], choice[i] = best[i + 1], None
            for length in range(1, min(self.longest, n - i) + 1):
                window = units[i:i + length]
                if not self._contiguous(text, window):
                    break
                found = self._lookup(tuple(u for u, _, _ in window))
                if found:
                    covered, used = best[i + length]
                    score = (covered + length, used - 1)
                    if score > best[i]:
                        best[i], choice[i] = score, (length, found)
        matches: list[PhraseMatch] = []
        i = 0
        while i < n:
            picked = choice[i]
            if picked is None:
                i += 1
                continue
            length, found = picked
            start, end = units[i][1], units[i + length - 1][2]
            matches.append(PhraseMatch(found[0], text.take(start, end), start, end, tuple(found[1]), found[2]))
            i += length
        for unit, start, end in units:
            if text.is_free(start, end) and (near := self.near(unit)):
                phrase, distance = near
                meanings = tuple(self.by_units[(phrase,)][1])
                matches.append(PhraseMatch(phrase, text.take(start, end), start, end, meanings,
                                           f"near (edit distance {distance})"))
        matches.sort(key=lambda m: m.start)
        return self._scoped(text, matches)

    @staticmethod
    def _contiguous(text: PromptText, window: list[tuple[str, int, int]]) -> bool:
        """True if only spaces, hyphens or nothing separate the units (no punctuation, no explained words)."""
        for (_, _, end), (_, start, _) in pairwise(window):
            gap = text.lower[end:start]
            if gap.strip(" -_") or not text.is_free(end, start):
                return False
        return True

    def _scoped(self, text: PromptText, matches: list[PhraseMatch]) -> list[PhraseMatch]:
        """Mark the matches that "no"/"without" or "just"/"only" govern, and take those marker words."""
        markers = [(u, s, e) for u, s, e in units_of(text.lower) if text.is_free(s, e)
                   and (u in NEGATIONS or u in ONLY_BEFORE or u in ONLY_AFTER)]
        markers += [(w, m.start(), m.end()) for w in ("不要", "没有", "只要", "只有", "不带", "去掉", "就要", "而已")
                    for m in re.finditer(w, text.lower) if text.is_free(m.start(), m.end())]
        if not markers:
            return matches
        scoped: list[PhraseMatch] = []
        for match in matches:
            scope = ""
            if any(m.kind in ("track", "instrument", "generic") for m in match.meanings):
                scope = self._scope_of(text, match, markers)
            scoped.append(match if not scope else PhraseMatch(match.phrase, match.words, match.start, match.end,
                                                             match.meanings, match.how, scope))
        for marker, start, end in markers:
            if any(s.scope and self._governs(text, marker, start, end, s) for s in scoped):
                text.take(start, end)
        return scoped

    def _scope_of(self, text: PromptText, match: PhraseMatch, markers: Iterable[tuple[str, int, int]]) -> str:
        for marker, start, end in markers:
            if self._governs(text, marker, start, end, match):
                return "without" if marker in NEGATIONS else "only"
        return ""

    @staticmethod
    def _governs(text: PromptText, marker: str, start: int, end: int, match: PhraseMatch) -> bool:
        if end <= match.start and (marker in NEGATIONS or marker in ONLY_BEFORE):
            return not _SCOPE_END.search(text.lower, end, match.start)
        if start >= match.end and marker in ONLY_AFTER:
            return not re.search(r"[.;!?。；！？]", text.lower[match.end:start])
        return False
