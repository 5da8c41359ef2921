"""What a song will be before a note is sampled: its style blend, meter, sections, energies and repeats.

* **Style**: a family id, name or alias of the model's style table (the card's ``styles``, in embedding order),
  or a blend ``"bossa_nova+house"`` / ``"bossa nova:0.7+house:0.3"`` (weights normalized; the model mixes the
  style embeddings with them). An unknown name is a `ParameterError` listing the families and the nearest one.
* **Sections** from the bar count: an intro and an outro (2 or 4 bars) around verse / chorus / bridge units of
  4 or 8 bars, ending on a chorus: ``intro verse chorus verse chorus bridge chorus outro`` for 2 minutes.
* **Repeats**: every chorus after the first plays the first one's bars again (a chorus that recurs note for
  note), and later verses keep the first verse's chords (new notes over the same harmony).
* **Energy** 0..1 becomes a level per section (0..4): the chorus one above the verse, intro and outro one below.
* **Meter**: the meters the model learned (4/4, 3/4, 6/8) are written as they are; 2/2 is 4/4 notated in two,
  2/4 is 4/4 material cut into half bars, and 12/8 is 4/4 on the triplet grid, each quarter beat becoming a
  dotted quarter.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tunesmith.errors import ParameterError
from tunesmith.symbolic.instruments import DRUM_KITS, EXTRA_PROGRAMS, GM_PROGRAM_NAMES, INSTRUMENTS, gm_program
from tunesmith.symbolic.song_tokens import ENERGY_LEVELS, SectionSpan

ENERGY_OFFSETS = {"intro": -1, "verse": 0, "chorus": 1, "bridge": 0, "outro": -1}
DERIVED_METERS: dict[str, tuple[str, str]] = {"2/2": ("4/4", "cut"), "2/4": ("4/4", "halves"),
                                              "12/8": ("4/4", "triplets")}


def _normalize(text: str) -> str:
    return re.sub(r"[\s_\-']+", " ", text.strip().lower()).strip()


def resolve_style(text: str, styles: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Style id -> weight (summing to 1) for ``text``: one family or a blend (module docstring)."""
    if not isinstance(text, str) or not text.strip():
        raise ParameterError("style must name a style family, e.g. 'bossa nova' or 'bossa_nova+house'",
                             field="style")
    weights: dict[str, float] = {}
    for part in text.split("+"):
        name, _, weight_text = part.partition(":")
        try:
            weight = float(weight_text) if weight_text.strip() else 1.0
        except ValueError:
            raise ParameterError(f"style weight {weight_text.strip()!r} in {text!r} is not a number",
                                 field="style") from None
        if not weight > 0:
            raise ParameterError(f"style weights must be positive, got {weight_text.strip()} in {text!r}",
                                 field="style")
        style = style_id(name, styles)
        weights[style] = weights.get(style, 0.0) + weight
    total = sum(weights.values())
    return {k: v / total for k, v in weights.items()}


def style_id(name: str, styles: Sequence[Mapping[str, Any]]) -> str:
    """The id of the family called ``name`` (id, display name or alias); ParameterError naming the nearest."""
    wanted = _normalize(name)
    names: dict[str, str] = {}
    for style in styles:  # the first family with a name wins, as in tunesmith.data.styles.resolve_family
        for n in (style["id"], style.get("name", ""), *style.get("aliases", ())):
            if n:
                names.setdefault(_normalize(n), style["id"])
    if wanted in names:
        return names[wanted]
    nearest = difflib.get_close_matches(wanted, list(names), n=1, cutoff=0.0)
    hint = f"; nearest: {names[nearest[0]]!r}" if nearest else ""
    raise ParameterError(f"unknown style {name.strip()!r}{hint}; choose one of: "
                         f"{', '.join(s['id'] for s in styles)} (or a blend such as 'bossa_nova+house')",
                         field="style")


def blend_value(weights: Mapping[str, float], styles: Sequence[Mapping[str, Any]], what: str) -> Any:
    """A style table entry's value for the heaviest style of a blend (e.g. its ``programs``)."""
    heaviest = max(weights, key=weights.get)
    return next(s for s in styles if s["id"] == heaviest)[what]


def default_tempo(weights: Mapping[str, float], styles: Sequence[Mapping[str, Any]]) -> float:
    """The middle of each style's tempo range, weighted by the blend."""
    by_id = {s["id"]: s for s in styles}
    return round(sum(w * sum(by_id[s]["tempo"]) / 2 for s, w in weights.items()))


@dataclass(frozen=True)
class MeterPlan:
    """The meter asked for and how the model writes it: ``model`` meter and the conversion (``native``, ``cut``,
    ``halves`` or ``triplets``)."""

    asked: tuple[int, int]
    model: tuple[int, int]
    conversion: str

    def model_bars(self, bars: int) -> int:
        """Model bars that make ``bars`` bars of the asked meter."""
        return -(-bars // 2) if self.conversion == "halves" else bars

    def tempo_factor(self) -> float:
        """The model's quarter-note tempo per asked quarter-note tempo."""
        return 1 / 1.5 if self.conversion == "triplets" else 1.0


def meter_plan(meter: str, learned: Sequence[str]) -> MeterPlan:
    """How ``meter`` is written by a model that learned the meters ``learned`` (ParameterError if it cannot)."""
    asked = _meter_tuple(meter)
    if meter in learned:
        return MeterPlan(asked, asked, "native")
    if meter in DERIVED_METERS and DERIVED_METERS[meter][0] in learned:
        model, how = DERIVED_METERS[meter]
        return MeterPlan(asked, _meter_tuple(model), how)
    offered = list(learned) + [m for m, (base, _) in DERIVED_METERS.items() if base in learned]
    raise ParameterError(f"this song model writes the meters {', '.join(offered)}; got {meter}", field="meter")


def family_style_files(card: Mapping[str, Any], family: str, plan: MeterPlan) -> list[Mapping[str, Any]]:
    """The card's style files of ``family`` that a song planned as ``plan`` may play: those in the meter the model
    writes, or all of the family's when it has none there."""
    meter = "{}/{}".format(*plan.model)
    own = [f for f in card.get("style_files") or [] if f["family"] == family]
    return [f for f in own if f["meter"] == meter] or own


def _meter_tuple(meter: str) -> tuple[int, int]:
    numerator, _, denominator = meter.partition("/")
    return int(numerator), int(denominator)


def plan_sections(bars: int, energy: float) -> list[SectionSpan]:
    """Sections filling exactly ``bars`` bars (module docstring), with energy levels from ``energy`` 0..1."""
    intro = 0 if bars < 16 else 2 if bars < 32 else 4
    outro = 0 if bars < 12 else 2 if bars < 40 else 4
    body = bars - intro - outro
    unit = 8 if body >= 32 else 4
    count = max(1, body // unit)
    names = _body_names(count)
    lengths = [unit] * count
    lengths[-1] += body - unit * count
    spans: list[SectionSpan] = []
    start = 0
    for name, length in (("intro", intro), *zip(names, lengths, strict=True), ("outro", outro)):
        if length:
            spans.append(SectionSpan(name, start, length, energy_level(energy, name)))
            start += length
    return spans


def _body_names(count: int) -> list[str]:
    """Verse/chorus/bridge names of ``count`` body sections, ending on a chorus from three sections on."""
    table = {1: ["verse"], 2: ["verse", "chorus"], 3: ["verse", "chorus", "chorus"],
             4: ["verse", "chorus", "verse", "chorus"], 5: ["verse", "chorus", "verse", "chorus", "chorus"],
             6: ["verse", "chorus", "verse", "chorus", "bridge", "chorus"]}
    if count in table:
        return table[count]
    extra = count - 6
    return ["verse", "chorus"] * (2 + extra // 2) + ["bridge", "chorus"] + ["chorus"] * (extra % 2)


def energy_level(energy: float, section: str) -> int:
    base = round(energy * (ENERGY_LEVELS - 1))
    return int(min(ENERGY_LEVELS - 1, max(0, base + ENERGY_OFFSETS.get(section, 0))))


@dataclass
class SongPlan:
    """Bars of the model's meter to write: sections, which bars replay an earlier bar (``copy_from``), which
    keep an earlier bar's chords (``chords_from``), which bars a loop keeps (``keep``: first, count) and
    whether the last section never ends (``open_end``: a loop has no fill or ending before it starts again)."""

    bars: int
    sections: list[SectionSpan]
    copy_from: dict[int, int] = field(default_factory=dict)
    chords_from: dict[int, int] = field(default_factory=dict)
    keep: tuple[int, int] | None = None
    open_end: bool = False


def song_plan(bars: int, energy: float) -> SongPlan:
    """Sections for ``bars`` bars, later choruses copying the first and later verses keeping its chords."""
    sections = plan_sections(bars, energy)
    plan = SongPlan(bars=bars, sections=sections)
    first: dict[str, SectionSpan] = {}
    for span in sections:
        source = first.setdefault(span.name, span)
        if source is span or span.name not in ("chorus", "verse"):
            continue
        for k in range(span.bars):
            if k < source.bars:
                target = plan.copy_from if span.name == "chorus" else plan.chords_from
                target[span.start_bar + k] = source.start_bar + k
    return plan


def loop_plan(bars: int, energy: float) -> SongPlan:
    """A loop of ``bars`` bars: one section played twice, the second time over the first time's chords; the
    second time is kept, so the loop's start follows its end as it followed the first time's end."""
    level = energy_level(energy, "verse")
    sections = [SectionSpan("verse", 0, 2 * bars, level)]
    return SongPlan(bars=2 * bars, sections=sections, chords_from={bars + k: k for k in range(bars)},
                    keep=(bars, bars), open_end=True)


DRUM_KIT_PROGRAMS = {k.name: k.program for k in DRUM_KITS} | {"drums": 0}
PITCHED_INSTRUMENTS = tuple(sorted({i.name for i in INSTRUMENTS} | set(EXTRA_PROGRAMS) | set(GM_PROGRAM_NAMES)))


def instrument_program(role: str, name: str | int) -> int:
    """A track's GM program from an instrument name (a drum kit for drums) or a program number."""
    if isinstance(name, int) and not isinstance(name, bool):
        if not 0 <= name <= 127:
            raise ParameterError(f"instruments.{role}: a GM program is 0..127, got {name}", field=f"instruments.{role}")
        return name
    text = str(name).strip().lower().replace(" ", "_").replace("-", "_")
    if role == "drums":
        if text not in DRUM_KIT_PROGRAMS:
            raise ParameterError(f"instruments.drums: unknown drum kit {name!r}; kits: "
                                 f"{', '.join(sorted(DRUM_KIT_PROGRAMS))}", field="instruments.drums")
        return DRUM_KIT_PROGRAMS[text]
    if text in DRUM_KIT_PROGRAMS:
        raise ParameterError(f"instruments.{role}: {name!r} is a drum kit; the {role} track plays a pitched "
                             "instrument", field=f"instruments.{role}")
    try:
        return gm_program(text)
    except ParameterError:
        raise ParameterError(f"instruments.{role}: unknown instrument {name!r}; choose one of: "
                             f"{', '.join(PITCHED_INSTRUMENTS)}", field=f"instruments.{role}") from None


def chord_chart(text: str, *, bar_beats: float, bars: int) -> list[tuple[float, str]]:
    """Chord changes (beat, symbol) from a chart: bars separated by "|", the chords of a bar by spaces (they
    share the bar evenly: "C G" is two beats each in 4/4); the chart repeats until ``bars`` bars are filled."""
    from tunesmith.symbolic.harmony import parse_chord

    chart = [bar.split() for bar in text.split("|")]
    chart = [bar for bar in chart if bar]
    if not chart:
        raise ParameterError("chords: give a chart such as 'Am | F | C | G' (bars separated by |)", field="chords")
    for bar in chart:
        for symbol in bar:
            try:
                parse_chord(symbol)
            except ParameterError:
                raise ParameterError(f"chords: {symbol!r} is not a chord symbol (e.g. Am7, F#m7b5, Bb/D)",
                                     field="chords") from None
    out: list[tuple[float, str]] = []
    for bar in range(bars):
        symbols = chart[bar % len(chart)]
        out += [(bar * bar_beats + k * bar_beats / len(symbols), s) for k, s in enumerate(symbols)]
    return out
