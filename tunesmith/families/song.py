"""The `song` family: whole multi-track songs (drums, bass, chords, pad, lead) in a style, with sections, from a
compound-word Transformer (cards with ``family == "song"``; :class:`tunesmith.compose.song.SongWriter`).

A job's params name a style family or a blend ("bossa_nova+house", "bossa nova:0.7+house:0.3"), key, tempo,
length (seconds) or bars, meter, energy 0..1, the tracks that play, their instruments, or a loop of N bars.
What a model can do comes from its card (styles, meters), so resolving a request needs no weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from tunesmith.audio.mix import MixSetting
from tunesmith.compose.sampling import STYLE_STRENGTH, STYLE_STRENGTH_RANGE
from tunesmith.compose.song_plan import (
    DERIVED_METERS,
    DRUM_KIT_PROGRAMS,
    PITCHED_INSTRUMENTS,
    MeterPlan,
    chord_chart,
    default_tempo,
    family_style_files,
    instrument_program,
    meter_plan,
    resolve_style,
)
from tunesmith.errors import ParameterError
from tunesmith.families.base import OUTPUTS, Family, InputFacts, Resolving, Trainer, Work
from tunesmith.families.params import TEMPERATURE_RANGE, TOP_P_RANGE, Key, UploadId
from tunesmith.symbolic.score import Note, Score
from tunesmith.symbolic.stream import StemStream

KEPT = "kept from the input note for note: the user's own material"

ROLES = ("drums", "bass", "chords", "pad", "lead")  # tunesmith.symbolic.song_tokens.ROLES
SONG_TEMPO = (40.0, 300.0)
LENGTH_RANGE = (1.0, 180.0)  # seconds; a song also has at least MIN_BARS bars
MIN_BARS, MAX_BARS, MAX_LOOP = 8, 256, 32
DEFAULT_SECONDS = 60.0
RENDER_TAIL_SECONDS = 1.5
SONG_METERS = ("4/4", "3/4", "6/8", "2/4", "2/2", "12/8")
PROMPT_PARAMS = ("style", "key", "tempo", "length", "bars", "meter", "energy", "tracks", "instruments", "loop")
Role = Literal["drums", "bass", "chords", "pad", "lead"]
InputMode = Literal["arrange", "continue", "regenerate", "restyle"]
INPUT_MODES = ("arrange", "continue", "regenerate", "restyle")  # tunesmith.compose.song.INPUT_MODES
CONTINUE_BARS = 8  # bars `continue` adds when neither length nor bars is given
SONG_INSTRUMENTS = tuple(sorted(set(PITCHED_INSTRUMENTS) | set(DRUM_KIT_PROGRAMS)))  # what `instruments` may name


def _split_list(value: Any) -> Any:
    """"drums,bass" or "drums bass" (a CLI --param) -> ["drums", "bass"]."""
    if isinstance(value, str):
        return [v for v in value.replace(",", " ").split() if v]
    return value


def _split_mapping(value: Any) -> Any:
    """"chords=accordion,lead=flute" (a CLI --param) -> {"chords": "accordion", "lead": "flute"}."""
    if isinstance(value, str):
        pairs = [p.partition("=") for p in value.replace(";", ",").split(",") if p.strip()]
        return {k.strip(): v.strip() for k, sep, v in pairs if sep} | {p[0].strip(): "" for p in pairs if not p[1]}
    return value


class SongParams(BaseModel):
    """Musical parameters of a song; each one left out comes from the prompt, else the style's default."""

    model_config = ConfigDict(extra="forbid")

    style: str | None = Field(None, max_length=200, description="a style family (id, name or alias, e.g. 'bossa "
                              "nova') or a blend 'bossa_nova+house' / 'bossa_nova:0.7+house:0.3'",
                              json_schema_extra={"default": "pop"})
    key: Key | None = None
    tempo: float | None = Field(None, ge=SONG_TEMPO[0], le=SONG_TEMPO[1],
                                json_schema_extra={"unit": "quarter notes per minute"},
                                description="default: the middle of the style's tempo range")
    length: float | None = Field(None, ge=LENGTH_RANGE[0], le=LENGTH_RANGE[1], json_schema_extra={"unit": "seconds",
                                 "default": DEFAULT_SECONDS},
                                 description=f"seconds, up to {LENGTH_RANGE[1]:g} (a song has {MIN_BARS} bars at "
                                 "least); `bars` wins when both are given")
    bars: int | None = Field(None, ge=MIN_BARS, le=MAX_BARS, description="number of bars (instead of length)")
    meter: Literal[SONG_METERS] | None = Field(None, description="time signature (default: the style's own)")
    energy: float | None = Field(None, ge=0.0, le=1.0, json_schema_extra={"default": 0.5},
                                 description="0 sparse and quiet .. 1 busy; 0.5 is the style's usual")
    tracks: Annotated[list[Role], BeforeValidator(_split_list)] | None = Field(
        None, min_length=1, description="which tracks play (default all: drums, bass, chords, pad, lead)")
    instruments: Annotated[dict[Role, Annotated[str, Field(min_length=1, max_length=40, json_schema_extra={
                               "enum": list(SONG_INSTRUMENTS)})]],
                           BeforeValidator(_split_mapping)] | None = Field(
        None, description="track -> General MIDI instrument (drums: a kit such as drums_jazz)")
    chords: str | None = Field(None, max_length=2000, description="a chord chart to follow instead of the model's "
                               "own harmony: bars separated by |, e.g. 'Am | F | C | G7' (repeated to the end)")
    loop: int | None = Field(None, ge=1, le=MAX_LOOP, description="a seamless loop of this many bars instead of a "
                             "song (its end flows into its start)")
    input: UploadId | None = Field(None, description="id of an uploaded MIDI, MusicXML or ABC file (POST /v1/uploads) "
                                   "to make the song with: a melody to arrange, or a song (see mode)")
    mode: InputMode | None = Field(None, description="what is made of input: 'arrange' its melody, kept note for note "
                                   "as the lead, with a band in style (the default); 'continue' it by length seconds "
                                   "or bars; 'regenerate' one track, keeping the others note for note; 'restyle' it "
                                   "in style, keeping its chords and melody")
    track: Role | None = Field(None, description="the track mode 'regenerate' writes anew (giving it implies that "
                               "mode)")
    temperature: float | None = Field(None, ge=TEMPERATURE_RANGE[0], le=TEMPERATURE_RANGE[1],
                                      json_schema_extra={"default": 1.0})
    top_p: float | None = Field(None, ge=TOP_P_RANGE[0], le=TOP_P_RANGE[1], json_schema_extra={"default": 0.95})
    style_strength: float | None = Field(None, ge=STYLE_STRENGTH_RANGE[0], le=STYLE_STRENGTH_RANGE[1],
                                         json_schema_extra={"default": STYLE_STRENGTH},
                                         description="how far the song leans into its style: 1 the model as "
                                         "trained, higher makes the style's typical grooves likelier (guidance "
                                         "away from the mean of all styles; writing takes about 2-3x as long)")
    neural_drums: bool | None = Field(None, description="play the drum track with the neural drum kit (model drums) "
                                      "instead of the soundfont", json_schema_extra={"default": False})


def styles(card: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(card.get("styles") or [])


def public_info(card: Mapping[str, Any]) -> dict[str, Any]:
    """What GET /v1/models shows of a song card besides its params: the style families a musician picks from (id,
    name, one-line description, other names, tempo range, usual meter) and the tracks with the instruments each
    may play."""
    shown = ("id", "name", "description", "aliases", "tempo", "meter")
    kits, pitched = sorted(DRUM_KIT_PROGRAMS), list(PITCHED_INSTRUMENTS)
    return {"styles": [{k: s.get(k) for k in shown} for s in styles(card)],
            "tracks": [{"name": role, "instruments": kits if role == "drums" else pitched} for role in ROLES]}


def offered_meters(card: Mapping[str, Any]) -> list[str]:
    learned = list(card.get("meters") or ["4/4"])
    return learned + [m for m, (base, _) in DERIVED_METERS.items() if base in learned and m not in learned]


def defaults(card: Mapping[str, Any]) -> dict[str, Any]:
    return {"style": "pop", "key": "C major", "length": DEFAULT_SECONDS, "meter": "4/4", "energy": 0.5,
            "tracks": list(ROLES), "temperature": 1.0, "top_p": 0.95, "style_strength": STYLE_STRENGTH}


def choices(card: Mapping[str, Any]) -> dict[str, list[str]]:
    return {"meter": offered_meters(card)}


def _field(name: str, explicit: Mapping[str, Any]) -> str:
    """Where an error about ``name`` points: the param if given, else the prompt that set it."""
    return f"params.{name}" if name in explicit else "prompt"


def resolve(request: Resolving) -> dict[str, Any]:
    """The params a song job runs with: the style (a blend kept as written) checked against the card, the meter
    the card's model writes, tempo from the style, the bar count from ``bars``, ``loop`` or ``length``; with an
    input (or a mode) :func:`resolve_input`."""
    explicit, card = request.explicit, request.card
    params = request.merged(PROMPT_PARAMS)
    params.update({k: v for k, v in explicit.items() if v is not None})
    if request.upload is not None or params.get("mode") or params.get("track"):
        return resolve_input(request, params)
    style = str(params.get("style") or "pop")
    try:
        weights = resolve_style(style, styles(card))
        plan = meter_plan(str(params.get("meter") or _style_meter(weights, card)), card.get("meters") or ["4/4"])
    except ParameterError as exc:
        raise ParameterError(exc.message, field=_field(exc.field or "style", explicit)) from None
    _say_family(style, weights, card, request.notes)
    meter = "{}/{}".format(*plan.asked)
    tempo = float(params.get("tempo") or default_tempo(weights, styles(card)))
    if not SONG_TEMPO[0] <= tempo <= SONG_TEMPO[1]:
        raise ParameterError(f"tempo must be {SONG_TEMPO[0]:g}-{SONG_TEMPO[1]:g} BPM, got {tempo:g}",
                             field=_field("tempo", explicit))
    if params.get("tempo"):
        _say_tempo(tempo, plan, weights, card, request.notes)
    loop = params.get("loop")
    if not loop:
        _fit_prompt_length(params, explicit, tempo, meter, request.notes)
    bars = int(loop) if loop else _song_bars(params, explicit, tempo, meter)
    tracks = list(dict.fromkeys(params.get("tracks") or ROLES))
    unknown = [t for t in tracks if t not in ROLES]
    if unknown:
        raise ParameterError(f"unknown track {unknown[0]!r}; a song has the tracks {', '.join(ROLES)}",
                             field=_field("tracks", explicit))
    instruments = _checked_instruments(params, explicit, tracks)
    if params.get("chords"):
        try:
            chord_chart(str(params["chords"]), bar_beats=4.0, bars=1)
        except ParameterError as exc:
            raise ParameterError(exc.message, field=_field("chords", explicit)) from None
    return {"style": style, "key": params.get("key") or "C major", "tempo": tempo, "bars": bars, "meter": meter,
            "energy": float(params.get("energy", 0.5)), "tracks": tracks, "instruments": instruments,
            "loop": int(loop) if loop else None, "chords": params.get("chords") or None,
            "temperature": float(params.get("temperature", 1.0)),
            "top_p": float(params.get("top_p", 0.95)), "neural_drums": bool(params.get("neural_drums")),
            "style_strength": float(params.get("style_strength", STYLE_STRENGTH)),
            "seed": request.seed}


def _say_family(style: str, weights: Mapping[str, float], card: Mapping[str, Any], notes: list[str]) -> None:
    """A note when a style was asked by an alias ("zydeco") or a near name: the family that plays it."""
    if len(weights) != 1:
        return
    (family,) = weights
    name = next((str(s.get("name") or family) for s in styles(card) if s["id"] == family), family)
    asked = style.strip().lower().replace("_", " ")
    if asked not in (family.replace("_", " "), name.lower()):
        notes.append(f"style {style!r}: played as {name} ({family})")


def _say_tempo(tempo: float, plan: MeterPlan, weights: Mapping[str, float], card: Mapping[str, Any],
               notes: list[str]) -> None:
    """A note for each style of the song none of whose style files (in the meter the model writes, as the writer
    draws them) was trained near the asked ``tempo``: the tempi they know and, when one knows twice it, what to
    ask to hear the style counted in half time (MMA writes the two-beat dances with a quarter note where a
    musician's 2/4 has an eighth)."""
    factor = plan.tempo_factor()
    for family in weights:
        spans = [f["tempo"] for f in family_style_files(card, family, plan) if f.get("tempo")]
        if not spans or any(low <= tempo * factor <= high for low, _, high in spans):
            continue
        known = ", ".join(f"{low / factor:.0f}-{high / factor:.0f}" for low, high in _merged(spans))
        note = f"tempo {tempo:g} BPM: the {family} grooves were trained at {known} BPM"
        if 2 * tempo <= SONG_TEMPO[1] and any(low <= 2 * tempo * factor <= high for low, _, high in spans):
            note += (f"; to hear {family} at {tempo:g} counted in half time (MMA writes the two-beat dances with a "
                     f"quarter note where a musician's 2/4 has an eighth), ask {2 * tempo:g} BPM")
        notes.append(note)


def _merged(spans: list[list[float]]) -> list[tuple[float, float]]:
    """The (low, high) intervals that (low, median, high) ``spans`` cover together, in order."""
    merged: list[tuple[float, float]] = []
    for low, *_, high in sorted(spans):
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def resolve_input(request: Resolving, params: dict[str, Any]) -> dict[str, Any]:
    """The params of a song made with an input score (``request.upload``): the mode, its track, the input's meter
    and tempo (``tempo`` may change it), its length (``continue``: plus ``bars`` or ``length`` seconds)."""
    explicit, card, upload = request.explicit, request.card, request.upload
    mode = params.get("mode") or ("regenerate" if params.get("track") else "arrange")
    if upload is None:
        raise ParameterError(f"mode {mode!r} makes a song from an input: upload a MIDI, MusicXML or ABC file with "
                             "POST /v1/uploads and give its id as params.input (--input FILE in the CLI)",
                             field="params.input")
    track = params.get("track")
    if track and mode != "regenerate":
        raise ParameterError(f"track names the track mode 'regenerate' writes anew; mode is {mode!r}",
                             field=_field("track", explicit))
    if mode == "regenerate" and not track:
        raise ParameterError(f"mode 'regenerate' needs track: the one to write anew ({', '.join(ROLES)})",
                             field="params.track")
    if mode == "restyle" and not params.get("style"):
        raise ParameterError("mode 'restyle' needs style: the style to re-arrange the input in", field="params.style")
    if params.get("loop"):
        raise ParameterError(f"a loop is written without an input; mode {mode!r} makes a song of the input",
                             field=_field("loop", explicit))
    name = upload.filename
    if upload.notes is not None and upload.notes == 0:
        raise ParameterError(f"{name} has no notes", field="params.input")
    if upload.notes is not None and request.max_input_notes is not None and upload.notes > request.max_input_notes:
        raise ParameterError(f"{name} has {upload.notes} notes; an input has at most {request.max_input_notes} "
                             "(setting max_input_notes)", field="params.input")
    if params.get("meter") and params["meter"] != upload.meter:
        raise ParameterError(f"{name} is in {upload.meter}; a song made of it keeps its meter (got meter "
                             f"{params['meter']})", field=_field("meter", explicit))
    try:
        meter_plan(upload.meter, card.get("meters") or ["4/4"])
    except ParameterError as exc:
        raise ParameterError(f"{name} is in {upload.meter}: {exc.message}", field="params.input") from None
    # continue and regenerate keep writing the input's own style (read by the model when it writes) unless asked
    style = params.get("style") or (None if mode in ("continue", "regenerate") else "pop")
    if style is not None:
        try:
            resolve_style(str(style), styles(card))
        except ParameterError as exc:
            raise ParameterError(exc.message, field=_field("style", explicit)) from None
    tempo = float(params.get("tempo") or min(max(upload.tempo, SONG_TEMPO[0]), SONG_TEMPO[1]))
    numerator, denominator = (int(x) for x in upload.meter.split("/"))
    bar_seconds = numerator * 4 / denominator * 60.0 / tempo
    bars = upload.bars
    if mode == "continue":
        added = params.get("bars") or (max(1, round(float(params["length"]) / bar_seconds)) if params.get("length")
                                       else CONTINUE_BARS)
        bars += int(added)
        if bars > MAX_BARS:
            what = "bars" if params.get("bars") else "length"
            raise ParameterError(f"{name} has {upload.bars} bars; with {added} more the song would have {bars}, "
                                 f"more than {MAX_BARS}", field=_field(what, explicit))
    else:
        for what in ("bars", "length"):
            if what in explicit:
                raise ParameterError(f"mode {mode!r} keeps the length of {name} ({upload.bars} bars); {what} is "
                                     "for a new song or mode 'continue'", field=f"params.{what}")
            if params.get(what):
                request.notes.append(f"{what}: the input's {upload.bars} bars (mode {mode} keeps its length)")
        if bars > MAX_BARS:
            raise ParameterError(f"{name} has {bars} bars; a song has at most {MAX_BARS}", field="params.input")
    tracks = list(dict.fromkeys(params["tracks"])) if params.get("tracks") else None
    instruments = _checked_instruments(params, explicit, tracks or list(ROLES))
    if params.get("chords"):
        try:
            chord_chart(str(params["chords"]), bar_beats=4.0, bars=1)
        except ParameterError as exc:
            raise ParameterError(exc.message, field=_field("chords", explicit)) from None
    return {"input": upload.id, "mode": mode, "track": track, "style": style, "key": params.get("key") or None,
            "tempo": tempo, "bars": bars, "input_bars": upload.bars, "meter": upload.meter,
            "energy": float(params.get("energy", 0.5)), "tracks": tracks, "instruments": instruments, "loop": None,
            "chords": params.get("chords") or None, "temperature": float(params.get("temperature", 1.0)),
            "top_p": float(params.get("top_p", 0.95)),
            "style_strength": float(params.get("style_strength", STYLE_STRENGTH)), "seed": request.seed}


def _checked_instruments(params: Mapping[str, Any], explicit: Mapping[str, Any], tracks: list[str]) -> dict[str, Any]:
    """``instruments`` checked: each names a track that plays and an instrument it can play."""
    instruments = dict(params.get("instruments") or {})
    for role, name in instruments.items():
        if role not in tracks:
            raise ParameterError(f"instruments names the track {role!r}, which does not play (tracks: "
                                 f"{', '.join(tracks)})", field=_field("instruments", explicit))
        try:
            instrument_program(role, name)
        except ParameterError as exc:
            raise ParameterError(exc.message, field=_field("instruments", explicit) + f".{role}") from None
    return instruments


def check_input(params: dict[str, Any], score: Score) -> None:
    """What only the input's score tells: the track to regenerate is one it has, a melody to arrange has notes."""
    from tunesmith.compose.song_input import band_roles, melody_part

    mode, name = params.get("mode"), score.title or "the input"
    if mode is None:
        return
    if not score.n_notes:
        raise ParameterError(f"{name} has no notes", field="params.input")
    roles = [r for r in band_roles(score) if r is not None]
    if mode == "regenerate" and params.get("track") not in roles:
        have = ", ".join(r for r in ROLES if r in roles) or "none"
        raise ParameterError(f"{name} has no {params.get('track')} track to regenerate; its tracks are {have}",
                             field="params.track")
    if mode in ("arrange", "restyle") and melody_part(score) is None:
        raise ParameterError(f"{name} has no pitched notes: nothing to {mode}", field="params.input")


def _style_meter(weights: Mapping[str, float], card: Mapping[str, Any]) -> str:
    """The usual meter of the heaviest style of a blend (a waltz is in 3/4), else 4/4."""
    heaviest = max(weights, key=weights.get)
    entry = next((s for s in styles(card) if s["id"] == heaviest), {})
    return str(entry.get("meter") or "4/4")


def _fit_prompt_length(params: dict[str, Any], explicit: Mapping[str, Any], tempo: float, meter: str,
                       notes: list[str]) -> None:
    """A length or bar count read from the prompt that a song cannot have ("a 15-second jingle") is brought into
    range with a note (explicit values get a 422 instead)."""
    numerator, denominator = (int(x) for x in meter.split("/"))
    bar_seconds = numerator * 4 / denominator * 60.0 / tempo
    bars, seconds = params.get("bars"), params.get("length")
    if bars and "bars" not in explicit and not MIN_BARS <= int(bars) <= MAX_BARS:
        params["bars"] = min(max(int(bars), MIN_BARS), MAX_BARS)
        notes.append(f"bars: the prompt asks for {bars}; a song has {MIN_BARS} to {MAX_BARS}, so {params['bars']}")
    elif not bars and seconds and "length" not in explicit:
        fitted = min(max(float(seconds), MIN_BARS * bar_seconds), LENGTH_RANGE[1])
        if round(float(seconds) / bar_seconds) < MIN_BARS or float(seconds) > LENGTH_RANGE[1]:
            params["length"] = round(fitted, 1)
            notes.append(f"length: the prompt asks for {float(seconds):g} s; a song at {tempo:g} BPM lasts "
                         f"{MIN_BARS * bar_seconds:.0f} to {LENGTH_RANGE[1]:g} s, so {params['length']:g} s")


def _song_bars(params: Mapping[str, Any], explicit: Mapping[str, Any], tempo: float, meter: str) -> int:
    numerator, denominator = (int(x) for x in meter.split("/"))
    bar_seconds = numerator * 4 / denominator * 60.0 / tempo
    if params.get("bars"):
        bars = int(params["bars"])
        if not MIN_BARS <= bars <= MAX_BARS:
            raise ParameterError(f"bars must be {MIN_BARS}-{MAX_BARS}, got {bars}", field=_field("bars", explicit))
        if bars > MIN_BARS and bars * bar_seconds > LENGTH_RANGE[1] + 1e-6:
            raise ParameterError(f"{bars} bars at {tempo:g} BPM last {bars * bar_seconds:.0f} s; a song lasts at "
                                 f"most {LENGTH_RANGE[1]:g} s", field=_field("bars", explicit))
        return bars
    seconds = float(params.get("length") or DEFAULT_SECONDS)
    if not LENGTH_RANGE[0] <= seconds <= LENGTH_RANGE[1]:
        raise ParameterError(f"length must be {LENGTH_RANGE[0]:g}-{LENGTH_RANGE[1]:g} s, got {seconds:g}",
                             field=_field("length", explicit))
    bars = max(1, round(seconds / bar_seconds))
    if bars < MIN_BARS:
        raise ParameterError(f"{seconds:g} s at {tempo:g} BPM in {meter} is {bars} bar(s); a song has at least "
                             f"{MIN_BARS} bars (about {MIN_BARS * bar_seconds:.0f} s; or ask for a loop)",
                             field=_field("length", explicit))
    return bars


def seconds(params: dict[str, Any], _upload: InputFacts | None, _card: Mapping[str, Any]) -> float:
    """Length of the audio a job will make: its bars at its tempo plus the reverb tail (a loop: its bars, the
    tail wrapped onto its start)."""
    numerator, denominator = (int(x) for x in params["meter"].split("/"))
    tail = 0.0 if params.get("loop") else RENDER_TAIL_SECONDS
    return round(params["bars"] * numerator * 4 / denominator * 60.0 / params["tempo"] + tail, 3)


def run(writer: Any, params: dict[str, Any], source: Score | None, stream: StemStream | None = None) -> Work:
    """Write the song (the pipeline renders its score; with ``stream``, the parts the FluidSynth plays are
    rendered on it while the song is written); with a mode, made of the input score ``source``."""
    if params.get("mode"):
        return _run_input(writer, params, source)
    if params.get("neural_drums"):  # the drums are not FluidSynth's: the song's parts are rendered after it
        stream = None
    song = writer.generate(style=params["style"], key=params["key"], tempo=params["tempo"], bars=params["bars"],
                           meter=params["meter"], energy=params["energy"], tracks=params["tracks"],
                           loop=params.get("loop"), instruments=params.get("instruments") or None,
                           chart=params.get("chords"),
                           seed=params.get("seed"), temperature=params.get("temperature", 1.0),
                           top_p=params.get("top_p", 0.95),
                           style_strength=params.get("style_strength", STYLE_STRENGTH), stream=stream)
    result = {**song.params, "sections": song.sections, "tracks": song.tracks, "chords": song.chords,
              "n_notes": song.score.n_notes, "compose_seconds": round(song.seconds, 3), "steps": song.steps,
              "sampled_steps": song.sampled, "copied_steps": song.copied,
              "steps_per_second": round(song.steps_per_second, 1), "copy_redraws": song.copy_redraws,
              "copy_notes": song.copy_notes}
    signed = {k: v for k, v in params.items() if k != "model"}
    signed["seed"], signed["copy_guard"] = song.params["seed"], song.params["copy_guard"]
    kind = f"{params['loop']}-bar loop" if params.get("loop") else "song"
    title = f"{params['style']} {kind} in {song.params['key']}"
    performer = None
    if params.get("neural_drums"):  # the drum track by the neural kit, the rest by FluidSynth
        from tunesmith.compose.drumkit import neural_drum_performer

        performer = neural_drum_performer(seed=int(song.params["seed"] or 0))
    return Work(score=song.score, audio=None, sr=0, result=result, signed=signed, title=title, perform_part=performer,
                stream=stream, loop_beats=song.score.bar_beats * params["loop"] if params.get("loop") else None)


def _run_input(writer: Any, params: dict[str, Any], source: Score | None) -> Work:
    """A song made of an input score (`tunesmith.compose.song.SongWriter.generate_from`)."""
    if source is None:
        raise ParameterError(f"mode {params['mode']!r} needs an input score", field="params.input")
    check_input(params, source)
    added = params["bars"] - params["input_bars"] if params["mode"] == "continue" else None
    song = writer.generate_from(source, mode=params["mode"], style=params["style"], key=params.get("key"),
                                tempo=params["tempo"], bars=added, energy=params["energy"],
                                tracks=params.get("tracks"), track=params.get("track"),
                                instruments=params.get("instruments") or None, chart=params.get("chords"),
                                seed=params.get("seed"), temperature=params.get("temperature", 1.0),
                                top_p=params.get("top_p", 0.95),
                                style_strength=params.get("style_strength", STYLE_STRENGTH))
    result = {**song.params, "input": params.get("input"), "sections": song.sections, "tracks": song.tracks,
              "chords": song.chords, "n_notes": song.score.n_notes, "compose_seconds": round(song.seconds, 3),
              "steps": song.steps, "sampled_steps": song.sampled, "copied_steps": song.copied,
              "steps_per_second": round(song.steps_per_second, 1), "notes": song.notes,
              "copy_redraws": song.copy_redraws, "copy_notes": song.copy_notes}
    signed = {k: v for k, v in params.items() if k != "model"}
    signed["seed"], signed["copy_guard"] = song.params["seed"], song.params["copy_guard"]
    signed["style"] = song.params["style"]  # the input's own, when none was asked
    title = {"arrange": f"melody arranged as {params['style']}", "continue": "song continued",
             "regenerate": f"new {params.get('track')} part", "restyle": f"song restyled as {params['style']}"}
    return Work(score=song.score, audio=None, sr=0, result=result, signed=signed, title=title[params["mode"]])


def originality_tracks(work: Work) -> list[tuple[str, str | None, list[Note], str | None]]:
    """Each part of a song as the originality gate judges it: (name, band role, the notes the model wrote, why it
    is not judged or None). A part kept from the user's input is theirs (not judged); of a continued part only
    the bars after the input's are the model's."""
    report = work.result.get("tracks") or []
    after = float(work.result.get("input_bars") or 0) * work.score.bar_beats
    out = []
    for i, part in enumerate(work.score.parts):
        track = report[i] if i < len(report) else {}
        role, origin = track.get("role", part.name), track.get("input")
        if origin == "kept":
            out.append((part.name, role, [], KEPT))
        elif origin == "continued":
            out.append((part.name, role, [n for n in part.notes if n.start >= after - 1e-9], None))
        else:
            out.append((part.name, role, list(part.notes), None))
    return out


def use_copy_guard(writer: Any, make_guard: Any) -> None:
    """The sampler's copy guard: ``make_guard(meter, roles)`` (`tunesmith.provenance.song_copy_guard.CopyGuard`
    over the gate's index of the training tracks); None: the model's card names no corpus here, so no guard (the
    gate reports the song unchecked)."""
    writer.copy_guard = make_guard


def summary_line(result: Mapping[str, Any]) -> str:
    sections = " ".join(s["name"] for s in result.get("sections", []))
    if result.get("mode"):
        what = {"arrange": "melody arranged", "continue": f"continued from bar {result.get('input_bars', 0) + 1}",
                "regenerate": f"new {result.get('track')}", "restyle": "restyled"}[result["mode"]]
        return (f"{what}: {result.get('style')} in {result.get('key')}, {result.get('bars')} bars at "
                f"{result.get('tempo'):g} BPM, seed {result.get('seed')}")
    files = " + ".join(result.get("style_files") or {})
    grooves = f", grooves of MMA's {files}" if files else ""
    return (f"{result.get('style')} in {result.get('key')}, {result.get('bars')} bars at {result.get('tempo'):g} BPM"
            f" ({sections}){grooves}, seed {result.get('seed')}")


# Where each track sits in the mix: its own loudness before the sum (LUFS: the lead and the drums in front, the
# pad behind) and its pan (chords and pad to either side of a centred rhythm section and lead).
ROLE_MIX = {"drums": MixSetting(level_lufs=-18.0), "bass": MixSetting(level_lufs=-19.0),
            "chords": MixSetting(level_lufs=-21.0, pan=-0.35), "pad": MixSetting(level_lufs=-24.0, pan=0.35),
            "lead": MixSetting(level_lufs=-17.5, pan=0.1)}


def mix_setting(part: Any) -> MixSetting:
    """A track's place in the song's mix (a part named after a role; any other part: centred as rendered)."""
    return ROLE_MIX.get(str(part.name), MixSetting())


def load(card_path: Any) -> Any:
    from tunesmith.compose.song import SongWriter

    return SongWriter.load(card_path)


def train_options(group: Any) -> None:
    group.add_argument("--transpose", type=int, help="song: random transposition range in semitones (default 6)")
    group.add_argument("--eval-events", type=int, help="song: held-out events evaluated (default 60000)")
    group.add_argument("--heads", type=int, help="song: attention heads (default 4)")
    group.add_argument("--init", help="song: start from the weights of a song model (a name such as song, a run "
                                      "directory or a card) on a new schedule; its card's runs are kept")
    group.add_argument("--distill", type=float, metavar="S",
                       help="song: teach the --init model its own style guidance for strengths 1..S, so sampling "
                            "at any strength runs one pass a step instead of two (docs/models.md)")
    group.add_argument("--no-style-files", dest="style_files", action="store_false", default=True,
                       help="song: condition on the style family alone, not also on the style file of each "
                            "training song (before session 16's models)")
    group.add_argument("--file-balance", type=float, metavar="B",
                       help="song: even out how often each style file's songs are drawn, 0..1 (0, the default: "
                            "songs in proportion to their length; 1: each file about equally often, whatever "
                            "its number of songs)")


def train(args: Any) -> dict[str, Any]:
    """`tunesmith train song`: the song model on a grooves dataset (tunesmith.train.song); --dim, --layers and
    --window are shared with the lm trainer's options."""
    from tunesmith.train.song import SongTrainConfig, train_song

    if args.resume and not getattr(args, "style_files", True):
        raise ParameterError("--no-style-files shapes a new run; a resumed run keeps its model", field="style_files")
    if args.resume and getattr(args, "file_balance", None) is not None:
        raise ParameterError("--file-balance shapes a new run; a resumed run keeps its own", field="file_balance")
    model = {k: v for k in ("dim", "layers", "heads") if (v := getattr(args, k, None)) is not None}
    config = SongTrainConfig(minutes=args.minutes, max_steps=args.max_steps, batch_size=args.batch_size or 16,
                             window=getattr(args, "window", None) or 512, lr=args.lr or 1.5e-3,
                             eval_every=args.eval_every, seed=args.seed, threads=args.threads, model=model,
                             transpose=args.transpose if args.transpose is not None else 6,
                             eval_events=args.eval_events or 60_000, distill=getattr(args, "distill", None),
                             style_files=getattr(args, "style_files", True),
                             file_balance=getattr(args, "file_balance", None) or 0.0)
    return train_song(args.data, args.out, config, resume=args.resume, init=getattr(args, "init", None))


SONG = Family(
    name="song", card_family="song", kind="composer",
    summary="whole songs by a multi-track band (drums, bass, chords, pad, lead) in a style, with sections",
    load=load, params=SongParams, run=run, streams=True, resolve=resolve, seconds=seconds, originality="tracks",
    outputs=OUTPUTS | {"stems"},  # a song comes as its mix, its MIDI and a WAV per track
    originality_tracks=originality_tracks, use_copy_guard=use_copy_guard,
    describe=lambda card: f"multi-track songs in {len(styles(card))} styles",
    summary_line=summary_line, mix_setting=mix_setting, soundfont="full", card_defaults=defaults,
    card_choices=choices, prompt_params=PROMPT_PARAMS, check_input=check_input, public_info=public_info,
    trainer=Trainer("song", "multi-track song model (grooves corpus)", train, train_options),
)
