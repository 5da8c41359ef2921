"""From facts to one family's parameters: the strongest fact wins, equal strong ones that differ contradict.

For each parameter the family takes (:class:`~tunesmith.prompting.spec.FamilySpec`), the facts that bear on it are
grouped by strength: an explicit parameter beats a rule ("92 bpm"), which beats a named word ("slow"), which beats
what a mood or scene implies, which beats an embedding match, which beats a style's default. Two different values
said as strongly as a rule or a named word ("fast and slow", "in C major and D minor") are a contradiction; weaker
ones are blended (ranges intersect, numbers average). Values are then fitted to the family (ranges clamped,
instruments fitted to its choices, seconds turned into bars for a family that counts bars), each with a note.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from tunesmith.errors import ParameterError
from tunesmith.prompting.instruments import fit_instrument, gm_group, is_drum_kit
from tunesmith.prompting.interpretation import ParamReading
from tunesmith.prompting.spec import FamilySpec, ParamSpec
from tunesmith.prompting.text import DEFAULT, EXPLICIT, GIVEN, IMPLIED, LEVEL_NAMES, NAMED, SIMILAR, Fact
from tunesmith.prompting.vocabulary import TRACKS, Vocabulary
from tunesmith.symbolic.keys import key_name, parse_key

MAX_BLEND = 3
# Which of a family's parameters each kind of fact bears on (the first one the family takes is used).
PARAMS_OF_FACT: dict[str, tuple[str, ...]] = {
    "style": ("style",), "style_hint": ("style",), "key": ("key",), "mode": ("key", "mode"), "tempo": ("tempo",),
    "style_tempo": ("tempo",), "meter": ("meter",), "bars": ("bars",), "seconds": ("length", "duration", "bars"),
    "loop": ("loop",),
    "pitch": ("pitch",), "velocity": ("velocity",), "dynamics": ("velocity", "energy"), "duration": ("duration",),
    "energy": ("energy",), "density": ("density",), "instrument": ("instrument", "instruments"),
    "generic": ("instrument", "instruments"), "ensemble_instrument": ("instrument", "instruments"),
    "instrument_on": ("instruments",), "tracks": ("tracks",), "track_only": ("tracks",),
    "track_without": ("tracks",), "track_with": ("tracks", "instrument"), "drum": ("pitch", "instrument"),
}


def _mid(value: float | tuple[float, float]) -> float:
    return (value[0] + value[1]) / 2 if isinstance(value, tuple) else float(value)


def _words(facts: Iterable[Fact]) -> list[str]:
    return list(dict.fromkeys(w for f in facts for w in f.words if w))


def _source(fact: Fact) -> str:
    return LEVEL_NAMES[fact.level]


def _describe(fact: Fact) -> str:
    origin = fact.source.split(":", 1)[-1] if ":" in fact.source else fact.source
    if fact.source.startswith("rule:"):
        return f"rule {origin}"
    kind, _, name = origin.partition(":")
    if fact.level == DEFAULT:
        return f"default of {kind} {name}"
    if fact.source.startswith("embedding:"):
        return f"like {kind} '{name}' (embedding, similarity {fact.confidence / 0.8:.2f})"
    if fact.level == IMPLIED:
        return f"what {kind} '{name}' implies"
    return f"{kind} '{name}'" if name else kind


@dataclass
class Resolution:
    """The family's parameters read from the facts, with notes and contradictions."""

    params: dict[str, ParamReading] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


class Resolver:
    """Reads the facts of one prompt into the parameters of one family."""

    def __init__(self, facts: list[Fact], family: FamilySpec, vocabulary: Vocabulary) -> None:
        self.facts, self.family, self.vocabulary = facts, family, vocabulary
        self.out = Resolution()

    # ----- helpers -----
    def of(self, *names: str) -> list[Fact]:
        return [f for f in self.facts if f.name in names]

    def set(self, name: str, value: Any, facts: list[Fact], *, detail: str | None = None,
            confidence: float | None = None) -> None:
        top = max(facts, key=lambda f: f.level)
        self.out.params[name] = ParamReading(
            name, value, _source(top), detail or _describe(top), _words(f for f in facts if f.level == top.level),
            top.confidence if confidence is None else confidence)

    def conflict(self, name: str, facts: list[Fact], show: Any = None) -> None:
        shown = ", ".join(f"{show(f) if show else f.value} (from {', '.join(repr(w) for w in f.words)})"
                          for f in facts)
        self.out.conflicts.append(f"more than one {name}: {shown}")

    def strongest(self, facts: list[Fact]) -> list[Fact]:
        top = max(f.level for f in facts)
        return [f for f in facts if f.level == top]

    def spec(self, name: str) -> ParamSpec | None:
        return self.family.param(name)

    # ----- parameters -----
    def resolve(self) -> Resolution:
        self.style_named = any(f.level >= NAMED for f in self.of("style"))
        self.style = self._style()
        self._key()
        self.tempo = self._tempo()
        self.meter = self._meter()
        self._lengths()
        self._energy()
        self._density()
        self._instruments()
        self._notes()
        self._unused()
        return self.out

    def _style(self) -> list[str]:
        named = self.of("style")
        if named:
            top = self.strongest(named)
            styles = list(dict.fromkeys(f.value for f in top))
            parents = {e.parent for s in styles if (e := self.vocabulary.entry("style", s)) and e.parent}
            if narrower := [s for s in styles if s not in parents]:  # "bebop jazz" is bebop
                if len(narrower) < len(styles):
                    self.out.notes.append(f"style: {', '.join(sorted(set(styles) - set(narrower)))} read as the "
                                          f"family of {', '.join(narrower)}")
                styles = narrower
            styles = styles[:MAX_BLEND]
            chosen_facts = [f for f in top if f.value in styles]
        else:
            hints = self.of("style_hint")
            if not hints:
                return []
            hints = self.strongest(hints)
            votes: dict[str, float] = {}
            for rank, fact in enumerate(hints):
                for i, style in enumerate(fact.value):
                    votes[style] = votes.get(style, 0.0) + fact.confidence / (1 + i) - rank * 1e-3
            styles = [max(votes, key=votes.__getitem__)]
            chosen_facts = hints
            entry = self.vocabulary.entry("style", styles[0])
            if entry is not None and self.spec("style"):  # the hinted style's usual tempo and sound, as defaults
                from tunesmith.prompting.facts import entry_facts

                self.facts += [Fact(f.name, f.value, f.words, f"vocabulary:style:{entry.id}", DEFAULT, f.confidence)
                               for f in entry_facts(entry, IMPLIED, chosen_facts[0].words[0], 0.5)
                               if f.name not in ("style", "meter")]
        if self.spec("style"):
            value = "+".join(styles)
            detail = (f"blend of {', '.join(styles)} (equal weights)" if len(styles) > 1
                      else _describe(max(chosen_facts, key=lambda f: f.level)))
            if not named:
                detail = f"suggested by {_describe(chosen_facts[0]).replace('what ', '').replace(' implies', '')}"
            self.set("style", value, chosen_facts, detail=detail)
        elif named:
            self.out.notes.append(f"style {'+'.join(styles)} (from {', '.join(repr(w) for w in _words(named))}) is "
                                  f"not used: the {self.family.id} model takes no style")
        return styles

    def _key(self) -> None:
        keys, modes = self.of("key"), self.of("mode")
        if not (self.spec("key") or self.spec("mode")) or not (keys or modes):
            return
        mode_facts = [f for f in modes] + [Fact("mode", f.value.split()[1], f.words, f.source, f.level, f.confidence)
                                           for f in keys if " " in f.value]
        if keys:  # a written tonic ("in Bb") is major unless the prompt says or names a minor mood
            mode_facts = [f for f in mode_facts if f.level >= IMPLIED]
        mode, mode_from = None, []
        if mode_facts:
            top = self.strongest(mode_facts)
            values = list(dict.fromkeys(f.value for f in top))
            if len(values) > 1 and top[0].level >= EXPLICIT:
                self.conflict("mode", top)
                return
            if len(values) > 1:  # moods disagree ("dark but happy"): the more confident one
                top = [max(top, key=lambda f: f.confidence)]
            mode, mode_from = top[0].value, top
        if keys:
            top = self.strongest(keys)
            tonics = list(dict.fromkeys(f.value.split()[0] for f in top))
            full = list(dict.fromkeys(f.value for f in top if " " in f.value))
            if len(tonics) > 1 or len(full) > 1:
                self.conflict("key", top)
                return
            tonic = tonics[0]
            mode = mode or "major"
            name = key_name(*parse_key(f"{tonic} {mode}"))
            facts = top + [f for f in mode_from if f not in top]
            detail = _describe(top[0]) if full else (
                f"{_describe(top[0])}; mode {mode} from {_describe(mode_from[0])}" if mode_from else
                f"{_describe(top[0])}; a bare tonic reads as major")
            confidence = top[0].confidence * (1.0 if full or mode_from else 0.9)
        else:
            tonic = self.vocabulary.default_tonic[mode]
            name = key_name(*parse_key(f"{tonic} {mode}"))
            facts = mode_from
            detail = f"mode {mode} from {_describe(mode_from[0])}; tonic {tonic} is the default for {mode}"
            confidence = min(0.6, mode_from[0].confidence)
        if self.spec("key"):
            self.set("key", name, facts, detail=detail, confidence=confidence)
        if self.spec("mode"):
            self.set("mode", mode, mode_from or facts)

    def _style_range(self) -> tuple[tuple[float, float], list[Fact]] | None:
        """The usual tempo range of the chosen style(s) (a blend: where they meet, else between them)."""
        facts = [f for f in self.of("style_tempo") if f.value[0] in self.style]
        if not facts:
            return None
        halve = not self.spec("style")  # a model without styles counts as a musician does: a doubled range halves
        ranges = [(low / 2, high / 2) if halve and self._doubled(style) else (low, high)
                  for style, (low, high) in (f.value for f in facts)]
        low, high = max(r[0] for r in ranges), min(r[1] for r in ranges)
        if low > high:
            low = high = sum(_mid(r) for r in ranges) / len(ranges)
        return (low, high), facts

    def _doubled(self, style: str) -> bool:
        """Whether ``style`` is written at twice the tempo a musician counts (vocabulary ``doubled``)."""
        entry = self.vocabulary.entry("style", style)
        return entry is not None and entry.doubled

    def _tempo(self) -> float | None:
        facts = self.of("tempo")
        style_range = self._style_range()
        if self.spec("style") and self.style and all(self._doubled(s) for s in self.style):
            # "fast", "calm": as a musician counts them, in the song model's quarter notes
            facts = [replace(f, value=(2 * f.value[0], 2 * f.value[1]), source=f"{f.source} (doubled)")
                     if isinstance(f.value, tuple) else f for f in facts]
        if not facts and style_range:
            (low, high), chosen = style_range
            return self._set_tempo(float(round((low + high) / 2)), chosen,
                                   f"usual tempo of {', '.join(self.style)}: {low:g}-{high:g} BPM")
        if not facts:
            return None
        top = self.strongest(facts)
        level = top[0].level
        numbers = [f for f in top if not isinstance(f.value, tuple)]
        ranges = [f for f in top if isinstance(f.value, tuple)]
        if numbers:
            values = list(dict.fromkeys(f.value for f in numbers))
            if len(values) > 1:
                self.conflict("tempo", numbers, lambda f: f"{f.value:g} BPM")
                return None
            bpm = values[0]
            chosen, detail = numbers, _describe(numbers[0])
        else:
            low, high = max(f.value[0] for f in ranges), min(f.value[1] for f in ranges)
            if low > high and level >= NAMED:
                self.conflict("tempo", ranges, lambda f: f"{f.value[0]:g}-{f.value[1]:g} BPM")
                return None
            if low > high:  # implied ranges that do not meet: weigh their middles
                weight = sum(f.confidence for f in ranges)
                low = high = sum(_mid(f.value) * f.confidence for f in ranges) / weight
            for lower in sorted({f.level for f in facts if f.level < level}, reverse=True):  # narrow by weaker ones
                for fact in (f for f in facts if f.level == lower and isinstance(f.value, tuple)):
                    a, b = max(low, fact.value[0]), min(high, fact.value[1])
                    if b - a >= 4:
                        low, high = a, b
            bpm = float(round((low + high) / 2))
            chosen = ranges
            detail = f"{_describe(ranges[0])}: {low:g}-{high:g} BPM" if low != high else _describe(ranges[0])
            if style_range and level < NAMED and self.style_named:  # a mood sets the pace within a named style
                (style_low, style_high), _ = style_range
                if not style_low <= bpm <= style_high:
                    bpm = float(round(min(max(bpm, style_low), style_high)))
                    detail += f", held within the usual {style_low:g}-{style_high:g} BPM of {', '.join(self.style)}"
        weaker = [f for f in facts if f.level < level and f.level >= NAMED]
        if weaker:
            self.out.notes.append(f"tempo: {', '.join(repr(w) for w in _words(weaker))} gives way to "
                                  f"{', '.join(repr(w) for w in _words(chosen))}")
        return self._set_tempo(bpm, chosen, detail)

    def _set_tempo(self, bpm: float, chosen: list[Fact], detail: str) -> float:
        spec = self.spec("tempo")
        if spec is None:
            return bpm
        clamped = spec.clamp(bpm)
        if clamped != bpm:
            self.out.notes.append(f"tempo {bpm:g} BPM is outside what {self.family.id} takes; using {clamped:g}")
        self.set("tempo", clamped if spec.kind == "float" else round(clamped), chosen, detail=detail)
        return clamped

    def _meter(self) -> str | None:
        facts = self.of("meter")
        if not facts:
            return None
        top = self.strongest(facts)
        values = list(dict.fromkeys(f.value for f in top))
        if len(values) > 1 and top[0].level >= NAMED:
            self.conflict("meter", top)
            return None
        meter = values[0]
        spec = self.spec("meter")
        if spec is None:
            return meter
        if spec.choices and meter not in spec.choices:
            self.out.notes.append(f"meter {meter} is not one the {self.family.id} model writes "
                                  f"({', '.join(spec.choices)}); left to the model")
            return None
        self.set("meter", meter, [f for f in top if f.value == meter])
        return meter

    def _beats_per_bar(self) -> float:
        if self.meter:
            top, bottom = (int(x) for x in self.meter.split("/"))
            return top / 3 if bottom == 8 and top % 3 == 0 else top * 4 / bottom
        return float(self.vocabulary.beats_per_bar)

    def _bars_for(self, seconds: float) -> int:
        tempo = self.tempo or self.vocabulary.default_tempo
        return max(1, round(seconds * tempo / 60 / self._beats_per_bar()))

    def _single(self, name: str) -> tuple[Any, list[Fact]] | None:
        facts = self.of(name)
        if not facts:
            return None
        top = self.strongest(facts)
        values = list(dict.fromkeys(f.value for f in top if f.value is not None))
        if len(values) > 1 and top[0].level >= EXPLICIT:
            self.conflict(name, top)
            return None
        return (values[0] if values else None), top

    def _number(self, name: str, value: float, facts: list[Fact], *, detail: str | None = None) -> None:
        spec = self.spec(name)
        if spec is None:
            return
        clamped = spec.clamp(value)
        if clamped != value:
            self.out.notes.append(f"{name} {value:g} is outside what {self.family.id} takes "
                                  f"({spec.minimum:g}..{spec.maximum:g}); using {clamped:g}")
        self.set(name, round(clamped) if spec.kind == "int" else float(clamped), facts, detail=detail)

    def _lengths(self) -> None:
        bars, seconds, loop = self._single("bars"), self._single("seconds"), self._single("loop")
        if bars and bars[0] is not None:
            if self.spec("bars"):
                self._number("bars", bars[0], bars[1])
            elif self.spec("length"):
                length = bars[0] * self._beats_per_bar() * 60 / (self.tempo or self.vocabulary.default_tempo)
                self._number("length", round(length, 1), bars[1], detail=f"{bars[0]} bars at the tempo")
        if seconds and seconds[0] is not None:
            if self.spec("length"):
                self._number("length", seconds[0], seconds[1])
            elif self.spec("duration"):
                self._number("duration", seconds[0], seconds[1])
            elif self.spec("bars") and not (bars and bars[0] is not None):
                count = self._bars_for(seconds[0])
                self._number("bars", count, seconds[1], detail=f"{seconds[0]:g} s at {self.tempo or 'the default'} "
                                                                 f"BPM = {count} bars")
        if loop and self.spec("loop"):
            count, facts = loop
            if count is None:
                count = self._bars_for(seconds[0]) if seconds and seconds[0] is not None else self.vocabulary.loop_bars
                detail = f"a loop of {count} bars ({'from the length' if seconds and seconds[0] else 'the default'})"
                self._number("loop", count, facts, detail=detail)
            else:
                self._number("loop", count, facts)
        elif loop and loop[0] is not None and not self.spec("loop") and self.spec("bars") and "bars" not in \
                self.out.params:
            self._number("bars", loop[0], loop[1], detail="the loop's bars")

    def _energy(self) -> None:
        facts = self.of("energy")
        if not self.spec("velocity"):
            facts += [Fact("energy", f.value, f.words, f.source, f.level, f.confidence) for f in self.of("dynamics")]
        if not facts or not self.spec("energy"):
            return
        top = self.strongest(facts)
        weight = sum(f.confidence for f in top)
        value = round(sum(f.value * f.confidence for f in top) / weight, 2)
        detail = _describe(top[0]) if len(top) == 1 else "average of " + ", ".join(_describe(f) for f in top)
        self._number("energy", value, top, detail=detail)

    def _density(self) -> None:
        facts = self.of("density")
        if facts and self.spec("density"):
            top = self.strongest(facts)
            self._number("density", round(sum(f.value for f in top) / len(top), 2), top)

    # ----- instruments and tracks -----
    def _named_instruments(self) -> list[tuple[str, str | None, str, Fact]]:
        """(instrument, track hint, scope, fact) of every instrument the prompt names, generic words resolved."""
        named = []
        for fact in sorted(self.of("instrument", "generic"), key=lambda f: f.span or (0, 0)):
            name, hint, scope = fact.value
            if fact.name == "generic":
                generic = self.vocabulary.generic[name]
                resolved = next((generic.by_style[s] for s in self.style if s in generic.by_style), generic.default)
                self.out.notes.append(f"{', '.join(repr(w) for w in fact.words)} read as {resolved}"
                                      + (f" for {self.style[0]}" if self.style else ""))
                name = resolved
            named.append((name, hint, scope, fact))
        return named

    def _track_of(self, instrument: str) -> str:
        return "drums" if is_drum_kit(instrument) else self.vocabulary.track_of_group.get(gm_group(instrument),
                                                                                          "lead")

    def _instruments(self) -> None:
        named = self._named_instruments()
        if self.spec("instruments") or self.spec("tracks"):
            self._song_instruments(named)
        if self.spec("instrument"):
            self._single_instrument(named)

    def _song_instruments(self, named: list[tuple[str, str | None, str, Fact]]) -> None:
        spec, tracks_spec = self.spec("instruments"), self.spec("tracks")
        tracks = tracks_spec.choices if tracks_spec and tracks_spec.choices else \
            (spec.keys if spec and spec.keys else TRACKS)
        assigned: dict[str, tuple[str, Fact]] = {}
        ordered = list(enumerate(self.of("instrument_on")))  # weaker first; at one strength the first said wins
        for _, fact in sorted(ordered, key=lambda pair: (pair[1].level, -pair[0])):
            track, name = fact.value
            if track in tracks:
                assigned[track] = (name, fact)
        only_tracks: list[str] = []
        for name, hint, scope, fact in named:
            track = hint or self._track_of(name)
            if track not in tracks:
                continue
            holder = assigned.get(track)
            if holder and holder[1].level >= NAMED and holder[1].name in ("instrument", "generic") and not hint:
                track = next((t for t in ("lead", "chords", "pad") if t in tracks and not (
                    t in assigned and assigned[t][1].level >= NAMED and assigned[t][1].name in ("instrument",
                                                                                              "generic"))), track)
            assigned[track] = (name, fact)
            if scope == "only":
                only_tracks.append(track)
        pitched = list(dict.fromkeys(n for n, _, _, _ in named if not is_drum_kit(n)))
        if len(pitched) == 1 and "lead" in tracks:  # one named instrument is the featured one: it also leads
            lead = assigned.get("lead")
            if not lead or lead[1].level < NAMED or lead[1].name not in ("instrument", "generic"):
                fact = next(f for n, _, _, f in named if n == pitched[0])
                assigned["lead"] = (pitched[0], fact)
        chosen_tracks = self._tracks(tracks, only_tracks)
        if spec is not None and assigned:
            mapping, facts, details = {}, [], []
            for track in tracks:
                if track not in assigned or (chosen_tracks is not None and track not in chosen_tracks):
                    continue
                name, fact = assigned[track]
                fitted = fit_instrument(name, spec.choices) if spec.choices else name
                if fitted is None:
                    self.out.notes.append(f"{track}: {name} is not an instrument {self.family.id} plays")
                    continue
                mapping[track] = fitted
                facts.append(fact)
                details.append(f"{track} {fitted} ({_describe(fact)})")
            if mapping:
                strongest = max(facts, key=lambda f: f.level)
                self.out.params["instruments"] = ParamReading(
                    "instruments", mapping, _source(strongest), "; ".join(details),
                    _words(f for f in facts if f.level >= SIMILAR), strongest.confidence)

    def _tracks(self, tracks: tuple[str, ...], only_tracks: list[str]) -> list[str] | None:
        spec = self.spec("tracks")
        only = self.of("track_only")
        exact = [f for f in self.of("tracks") if f.level > SIMILAR]  # a lookalike does not silence tracks
        without = self.of("track_without")
        chosen: list[str] | None = None
        facts: list[Fact] = []
        if only or only_tracks:
            chosen = list(dict.fromkeys([f.value for f in only] + only_tracks))
            facts = only + [f for f in self.of("instrument") if f.value[2] == "only"]
        elif exact:
            top = self.strongest(exact)
            chosen = list(dict.fromkeys(t for f in top for t in f.value))
            facts = top
        if without:
            chosen = [t for t in (chosen or tracks) if t not in {f.value for f in without}]
            facts = facts + without
        if chosen is None or spec is None:
            return chosen
        chosen = [t for t in tracks if t in chosen]
        if not chosen:
            self.out.notes.append("the prompt leaves no track; left to the model")
            return None
        if only or only_tracks or exact:
            detail = f"only {', '.join(chosen)}"
        else:
            detail = f"without {', '.join(f.value for f in without)}: {', '.join(chosen)}"
        self.set("tracks", chosen, facts, detail=detail)
        return chosen

    def _single_instrument(self, named: list[tuple[str, str | None, str, Fact]]) -> None:
        spec = self.spec("instrument")
        assert spec is not None
        candidates: list[tuple[str, Fact]] = [(n, f) for n, _, _, f in named]
        candidates += [(f.value, f) for f in self.of("ensemble_instrument")]
        if self.spec("pitch"):
            candidates += [("drums_standard", f) for f in self.of("drum")]
        track_instruments = {"bass": "acoustic_bass", "drums": "drums_standard"}  # "a bass note" with no instrument
        if not candidates:
            candidates += [(track_instruments[f.value], f) for f in self.of("track_with")
                           if f.value in track_instruments]
        candidates += [(f.value[1], f) for f in self.of("instrument_on") if f.level >= IMPLIED and f.value[0] == "lead"]
        if not candidates:
            return
        top_level = max(f.level for _, f in candidates)
        first = [(n, f) for n, f in candidates if f.level == top_level]
        first.sort(key=lambda c: c[1].span or (10**6, 0))
        name, fact = first[0]
        others = list(dict.fromkeys(n for n, _ in first[1:] if n != name))
        fitted = fit_instrument(name, spec.choices) if spec.choices else name
        if fitted is None:
            self.out.notes.append(f"{name} is not an instrument the {self.family.id} model plays "
                                  f"({', '.join(spec.choices)})")
            return
        detail = _describe(fact) + (f"; {name} played as {fitted}" if fitted != name else "")
        if others:
            self.out.notes.append(f"the {self.family.id} model plays one instrument: {fitted} (also named: "
                                  f"{', '.join(others)})")
        self.set("instrument", fitted, [fact], detail=detail)

    def _notes(self) -> None:
        """One-note parameters: pitch (or a drum sound), velocity and duration."""
        pitch = self._single("pitch")
        if pitch and pitch[0] is not None and self.spec("pitch"):
            self._number("pitch", pitch[0], pitch[1])
        elif self.spec("pitch") and (drums := self.of("drum")):
            self._number("pitch", drums[0].value, drums[:1], detail=f"GM drum key of {drums[0].words[0]!r}")
        if self.spec("velocity"):
            velocity = self._single("velocity")
            dynamics = self.of("dynamics")
            if velocity and velocity[0] is not None:
                self._number("velocity", velocity[0], velocity[1])
            elif dynamics:
                top = self.strongest(dynamics)
                level = sum(f.value for f in top) / len(top)
                self._number("velocity", round(1 + 126 * level), top, detail=f"{_describe(top[0])} = {level:g} of "
                                                                               "full loudness")
        if self.spec("duration") and "duration" not in self.out.params and (words := self.of("duration")):
            self._number("duration", words[0].value, words[:1])

    def _unused(self) -> None:
        """Notes for strongly said things the family has no parameter for."""
        for fact in self.facts:
            if fact.level < NAMED or fact.level == GIVEN or fact.name in ("family", "music", "tuning", "style"):
                continue
            targets = PARAMS_OF_FACT.get(fact.name, ())
            if targets and not any(self.family.takes(t) for t in targets):
                value = fact.value[0] if isinstance(fact.value, tuple) else fact.value
                said = ", ".join(repr(w) for w in fact.words)
                note = (f"{fact.name.replace('_', ' ')} {value} (from {said}) is not used: the {self.family.id} "
                        f"model has no {' or '.join(targets)}")
                if note not in self.out.notes:
                    self.out.notes.append(note)


def resolve(facts: list[Fact], family: FamilySpec, vocabulary: Vocabulary) -> Resolution:
    """The parameters of ``family`` that ``facts`` give, with notes and contradictions."""
    try:
        return Resolver(list(facts), family, vocabulary).resolve()
    except ParameterError as exc:  # a value the symbolic layer rejects (should not happen: rules check first)
        out = Resolution()
        out.conflicts.append(exc.message)
        return out
