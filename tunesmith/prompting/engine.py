"""`interpret`: a free-text prompt (English or Chinese) read into a model family and its parameters.

Steps: exact rules (:mod:`~tunesmith.prompting.rules`: numbers, keys, meters, tempo, lengths, pitches), then the
vocabulary's phrases (:mod:`~tunesmith.prompting.lexicon`: styles, forms, moods, scenes, ensembles, instruments,
tempo and loudness words, near misses of long words), then the sentence-embedding model on whatever words are
left (:mod:`~tunesmith.prompting.semantic`; skipped when nothing is left, so most prompts never run it). The facts
choose the family (words that name one, and which family takes the parameters the prompt sets) and are read into
its parameters (:mod:`~tunesmith.prompting.resolve`). The result always says what was understood; it is refused
only when nothing in it is about music or when it contradicts itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tunesmith.errors import ParameterError
from tunesmith.prompting.embedding import encoder
from tunesmith.prompting.facts import entry_facts, phrase_facts, track_hints
from tunesmith.prompting.interpretation import Interpretation, Match
from tunesmith.prompting.lexicon import Lexicon, units_of
from tunesmith.prompting.resolve import PARAMS_OF_FACT, resolve
from tunesmith.prompting.rules import apply_rules
from tunesmith.prompting.semantic import chunks, match_chunks, one_blas_thread, semantic_index
from tunesmith.prompting.spec import FamilySpec
from tunesmith.prompting.text import EXPLICIT, GIVEN, IMPLIED, NAMED, SIMILAR, Fact, PromptText, has_cjk
from tunesmith.prompting.vocabulary import Vocabulary, load_vocabulary

MAX_PROMPT_CHARS = 2000
_FACT_WEIGHT = {GIVEN: 0.8, EXPLICIT: 0.8, NAMED: 0.8, IMPLIED: 0.3, SIMILAR: 0.2}
_TRACK_WEIGHT = 0.3  # naming a track ("drums", "melody") hints at the band model, no more
_CLOSE = 0.5  # two families named this close together contradict each other
KEYWORD_WEIGHT = 1.3  # a keyword the service gives a family names it as surely as "my midi" names perform


@dataclass(frozen=True)
class EngineSettings:
    """Which packaged embedding model reads which language (None: exact words only).

    Both default to ``use`` (multilingual USE v3): on this 2-core machine it embeds a prompt in about 4 ms on one
    thread against about 16 ms for ``minilm`` (all-MiniLM-L6-v2, English only), loads in about 1 s against 5 s,
    and matched as many labelled fields (docs/prompts.md has the figures); ``minilm`` stays available.
    """

    english_model: str | None = "use"
    chinese_model: str | None = "use"


DEFAULT_SETTINGS = EngineSettings()
_LEXICONS: dict[str, Lexicon] = {}


def lexicon_for(vocabulary: Vocabulary) -> Lexicon:
    if vocabulary.sha256 not in _LEXICONS:
        _LEXICONS[vocabulary.sha256] = Lexicon(vocabulary)
    return _LEXICONS[vocabulary.sha256]


def warm_up(settings: EngineSettings = DEFAULT_SETTINGS) -> None:
    """Load the embedding models and embed the vocabulary now (a server calls this at start-up)."""
    vocabulary = load_vocabulary()
    lexicon_for(vocabulary).near("warmup")
    for name in dict.fromkeys(n for n in (settings.english_model, settings.chinese_model) if n):
        index = semantic_index(encoder(name), vocabulary)
        index.best(index.encoder.encode(["warm up", "a calm song"]))


def _given_facts(explicit: Mapping[str, Any]) -> list[Fact]:
    """Explicit parameters as the strongest facts (so that conversions use them: tempo for bars)."""
    facts = []
    names = {"length": "seconds", "duration": "seconds"}
    for name, value in explicit.items():
        if value is None or name in ("instruments", "tracks", "instrument", "style", "loop"):
            continue
        if name == "key" and isinstance(value, str):
            facts.append(Fact("key", value, (), "given", GIVEN))
        elif isinstance(value, int | float | str):
            facts.append(Fact(names.get(name, name), value, (), "given", GIVEN))
    return facts


def _choose_family(facts: list[Fact], families: Mapping[str, FamilySpec], text: PromptText,
                   vocabulary: Vocabulary) -> tuple[str, float, str, dict[str, float], list[str]]:
    """(family id, confidence, reason, scores, conflicts)."""
    word_scores: dict[str, float] = {f: 0.0 for f in families}
    word_from: dict[str, list[str]] = {f: [] for f in families}
    for fact in facts:
        if fact.name == "family" and fact.value[0] in families:
            family, weight = fact.value
            word_scores[family] = min(2.0, word_scores[family] + weight)
            word_from[family].extend(fact.words)
    for family_id, spec in families.items():  # keywords the service passes that the vocabulary does not know
        for keyword in spec.keywords:
            key = " ".join(keyword.lower().split())
            if key in vocabulary.family_words.get(family_id, {}):
                continue
            pattern = re.escape(key) if has_cjk(key) else rf"(?<![a-z0-9]){re.escape(key)}(?![a-z0-9])"
            if re.search(pattern, text.lower):
                word_scores[family_id] = min(2.0, word_scores[family_id] + KEYWORD_WEIGHT)
                word_from[family_id].append(keyword)
    scores = dict(word_scores)
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for fact in facts:
        targets = PARAMS_OF_FACT.get(fact.name)
        if not targets or fact.level not in _FACT_WEIGHT or (fact.name, fact.words) in seen:
            continue
        seen.add((fact.name, fact.words))
        takers = [f for f, spec in families.items() if any(spec.takes(t) for t in targets)]
        if not takers:
            continue
        weight = _TRACK_WEIGHT if fact.name.startswith("track") else _FACT_WEIGHT[fact.level]
        for family in takers:
            scores[family] += weight / len(takers)
    ranked = sorted(families, key=lambda f: (scores[f] + families[f].priority * 0.01, -list(families).index(f)),
                    reverse=True)
    best = ranked[0]
    conflicts = []
    named = sorted((f for f in families if word_scores[f] >= 1.0), key=lambda f: -word_scores[f])
    if len(named) > 1 and word_scores[named[0]] - word_scores[named[1]] < _CLOSE:
        conflicts.append("more than one model: " + ", ".join(
            f"{f} (from {', '.join(repr(w) for w in dict.fromkeys(word_from[f]))})" for f in named))
    second = scores[ranked[1]] if len(ranked) > 1 else 0.0
    if scores[best] < 0.25:
        return best, 0.35, f"no model named; {best} is the general-purpose one", scores, conflicts
    confidence = min(1.0, scores[best] / (scores[best] + max(second, 0.0) + 0.3))
    if word_from[best]:
        reason = f"named by {', '.join(repr(w) for w in dict.fromkeys(word_from[best]))}"
    else:
        reason = f"{best} takes what the prompt asks for"
    return best, confidence, reason, scores, conflicts


def _unused_words(text: PromptText, vocabulary: Vocabulary) -> list[str]:
    words = []
    for unit, _, _ in units_of(text.leftover()):
        if not has_cjk(unit) and unit not in vocabulary.fillers_en and not unit.isdigit():
            words.append(unit)
    for run in re.findall(r"[\u3400-\u9fff\uf900-\ufaff]+", text.leftover()):
        for filler in vocabulary.fillers_zh:
            run = run.replace(filler, " ")
        words += [w for w in run.split() if w]
    return list(dict.fromkeys(words))


def _about_music(prompt: PromptText, facts: list[Fact], vocabulary: Vocabulary, embedding_name: str | None,
                 notes: list[str]) -> bool:
    """Whether the prompt is about music: any musical word or rule; a prompt of scene words or embedding
    matches alone ("a beach party", but also "order a large coffee") is checked whole against the not-music
    topics, and is not music when one of them is nearer than every musical entry."""
    said = [f for f in facts if f.level != GIVEN and f.name != "tuning" and f.level >= SIMILAR]
    if not said:
        return False
    if not all(f.source.startswith(("vocabulary:scene:", "embedding:")) for f in said) or not embedding_name:
        return True
    index = semantic_index(encoder(embedding_name), vocabulary)
    with one_blas_thread():
        (entry, similarity), = index.best(index.encoder.encode([prompt.text]))
    if entry.startswith("topic:"):
        notes.append(f"the prompt as a whole looks like {entry.split(':', 1)[1]} (similarity {similarity:.2f}), "
                     "not music")
        return False
    return True


def interpret(text: str, families: Mapping[str, FamilySpec], *, model: str | None = None,
              explicit: Mapping[str, Any] | None = None, vocabulary: Vocabulary | None = None,
              settings: EngineSettings = DEFAULT_SETTINGS) -> Interpretation:
    """Read ``text`` into one of ``families`` and its parameters.

    ``model`` fixes the family (the caller chose it); ``explicit`` parameters are read as the strongest facts (they
    win over the prompt, and conversions such as seconds to bars use them) and appear with source ``given``.
    Raises ParameterError only for unusable input (not a string, too long, an unknown ``model``); a prompt that is
    not about music or contradicts itself comes back marked (:attr:`Interpretation.refused`).
    """
    if not isinstance(text, str):
        raise ParameterError(f"the prompt must be text, got {type(text).__name__}", field="prompt")
    if len(text) > MAX_PROMPT_CHARS:
        raise ParameterError(f"the prompt is {len(text)} characters; at most {MAX_PROMPT_CHARS}", field="prompt")
    if not families:
        raise ParameterError("no model families to choose from", field="model")
    if model is not None and model not in families:
        raise ParameterError(f"unknown model {model!r} (models: {', '.join(families)})", field="model")
    vocabulary = vocabulary or load_vocabulary()
    prompt = PromptText(text)
    language = "zh" if has_cjk(prompt.text) else "en"
    facts = _given_facts(explicit or {}) + apply_rules(prompt)
    phrase_matches = lexicon_for(vocabulary).match(prompt)
    hints = track_hints(phrase_matches, prompt.lower)
    matches = []
    for i, match in enumerate(phrase_matches):
        facts += phrase_facts(match, vocabulary, hints.get(i))
        matches += [Match(f"{m.kind}:{m.key}", match.words, match.how, match.confidence) for m in match.meanings
                    if m.kind != "music"]
    embedding_name = settings.chinese_model if language == "zh" else settings.english_model
    notes: list[str] = []
    used_model = None
    spans = chunks(prompt.leftover(), vocabulary) if embedding_name else []
    if spans:
        index = semantic_index(encoder(embedding_name), vocabulary)
        used_model = embedding_name
        for found in match_chunks([c for c, _, _ in spans], index):
            kind, _, entry_id = found.entry.partition(":")
            entry = vocabulary.entry(kind, entry_id)
            if entry is None:
                continue
            matches.append(Match(found.entry, found.words, "embedding", found.similarity))
            if kind == "topic":
                notes.append(f"{found.words!r} looks like {entry_id} (similarity {found.similarity:.2f}), not music")
                continue
            start, end = next((s, e) for c, s, e in spans if c == found.words)
            prompt.take(start, end)
            facts += entry_facts(entry, SIMILAR, found.words, min(1.0, found.similarity) * 0.8)
    about_music = _about_music(prompt, facts, vocabulary, embedding_name, notes)
    if model is not None:
        chosen, confidence, reason = model, 1.0, "given"
        scores, family_conflicts = {}, []
    else:
        chosen, confidence, reason, scores, family_conflicts = _choose_family(facts, families, prompt, vocabulary)
    resolution = resolve(facts, families[chosen], vocabulary)
    interpretation = Interpretation(
        text=text, language=language, about_music=about_music or (model is not None and bool(explicit)),
        model=chosen if about_music or model is not None else None, model_confidence=confidence if about_music else 0.0,
        model_reason=reason if about_music or model is not None else "nothing in the prompt is about music",
        params=resolution.params, unused_words=_unused_words(prompt, vocabulary), notes=notes + resolution.notes,
        conflicts=family_conflicts + resolution.conflicts, matches=matches, model_scores=scores,
        embedding_model=used_model)
    for name, value in (explicit or {}).items():
        if value is not None:
            reading = interpretation.params.get(name)
            if reading is None or reading.source != "given":
                interpretation.with_explicit({name: value})
    if interpretation.unused_words:
        interpretation.notes.append("not used: " + ", ".join(repr(w) for w in interpretation.unused_words))
    return interpretation
