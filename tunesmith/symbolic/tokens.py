"""The "voice grid" token encoding of monophonic-voice scores for sequence models.

Layout
------
``BOS KEY_<tonic>_<mode> METER_<n>_<d> VOICES_<v>`` then, bar by bar, ``BAR`` followed by
``bar_steps`` time steps of ``v`` tokens each (voice 0 first: soprano, alto, tenor, bass for a chorale),
then ``EOS``. ``PAD`` fills batches. A step token is ``P<pitch>`` (a note of MIDI pitch 0..127 starts
here), ``HOLD`` (the voice's note continues) or ``REST``. Time is a grid of ``steps_per_beat`` steps per
quarter note (default 4: sixteenth notes), so a 4/4 bar of a four-voice chorale is ``1 + 16 * 4 = 65``
tokens. The last bar is padded with RESTs to a full bar. Velocity and tempo are not encoded.

Why this encoding
-----------------
It follows BachBot (Liang, 2016: chorales as a time-major sequence of sixteenth-note frames, SATB
within a frame, with frame delimiters and a tie flag) and DeepBach (Hadjeres et al., 2017: one token
per voice per sixteenth with a hold symbol). Compared with event encodings (MIDI-like note-on/off, REMI)
the sequence is longer, but (1) every voice has a token at every step, so voices stay aligned without
time-shift arithmetic and the model always knows the metric position (``BAR`` + fixed step count);
(2) ``HOLD`` vs a repeated ``P<pitch>`` keeps repeated notes distinct from held ones, so the round trip
is lossless for quantized scores with monophonic voices; (3) the soprano is the first token of each
step, so a causal model can harmonize a given melody by forcing the soprano token at every step and
sampling only the lower voices (see :func:`melody_step_ids`). The vocabulary is small (177 tokens).

Conventions
-----------
Beat 0 is a downbeat (see `tunesmith.symbolic.io`): a pickup bar appears as leading ``REST`` steps of
the first bar, so the bar lines of the tokens are the bar lines of the score. Drum parts are ignored.
A score key of None is estimated (Krumhansl-Kessler) for the ``KEY`` token. Meters outside
:data:`METERS` become ``METER_other``; their bar length is then taken from the notated meter when
encoding and recovered from the distance between ``BAR`` tokens when decoding.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tunesmith.errors import InputFileError, ParameterError
from tunesmith.symbolic.keys import MODES, estimate_key, key_name, parse_key
from tunesmith.symbolic.score import Note, Part, Score
from tunesmith.symbolic.transform import MAX_STEPS_PER_BEAT, is_monophonic, quantize_part

SPECIAL_TOKENS = ("PAD", "BOS", "EOS", "BAR", "HOLD", "REST")
METERS: tuple[tuple[int, int], ...] = (
    (2, 4),
    (3, 4),
    (4, 4),
    (3, 2),
    (6, 8),
    (9, 8),
    (12, 8),
    (2, 2),
    (3, 8),
    (6, 4),
)
MAX_VOICES = 8
HEADER_LENGTH = 4  # BOS KEY METER VOICES
VOICE_NAMES_4 = ("Soprano", "Alto", "Tenor", "Bass")
VOCAB_FORMAT = "tunesmith-voice-grid"
VOCAB_VERSION = 1


def _default_tokens() -> list[str]:
    tokens = list(SPECIAL_TOKENS)
    tokens += [f"KEY_{tonic}_{mode}" for mode in MODES for tonic in range(12)]
    tokens += [f"METER_{n}_{d}" for n, d in METERS] + ["METER_other"]
    tokens += [f"VOICES_{v}" for v in range(1, MAX_VOICES + 1)]
    tokens += [f"P{pitch}" for pitch in range(128)]
    return tokens


class Vocabulary:
    """Token <-> id mapping of the voice-grid encoding (ids are positions in ``tokens``)."""

    def __init__(self, tokens: Sequence[str] | None = None) -> None:
        self.tokens: tuple[str, ...] = tuple(tokens) if tokens is not None else tuple(_default_tokens())
        self._ids = {token: i for i, token in enumerate(self.tokens)}
        if len(self._ids) != len(self.tokens):
            raise ParameterError("vocabulary has duplicate tokens")
        missing = [t for t in _default_tokens() if t not in self._ids]
        if missing:
            raise ParameterError(f"vocabulary lacks required tokens, e.g. {missing[:3]}")
        self.pitch_ids: tuple[int, ...] = tuple(self._ids[f"P{p}"] for p in range(128))
        self._pitch_of = {i: p for p, i in enumerate(self.pitch_ids)}
        self.step_ids: tuple[int, ...] = (*self.pitch_ids, self.hold_id, self.rest_id)

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens

    def __hash__(self) -> int:
        return hash(self.tokens)

    @property
    def size(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        """The id of ``token``; ParameterError if it is not in the vocabulary."""
        try:
            return self._ids[token]
        except KeyError:
            raise ParameterError(f"unknown token {token!r}", field="tokens") from None

    def token(self, token_id: int) -> str:
        """The token string of ``token_id``; ParameterError if out of range."""
        if (
            isinstance(token_id, bool)
            or not isinstance(token_id, int)
            or not 0 <= token_id < len(self.tokens)
        ):
            raise ParameterError(f"token id {token_id!r} is outside 0..{len(self.tokens) - 1}", field="ids")
        return self.tokens[token_id]

    pad_id = property(lambda self: self._ids["PAD"])
    bos_id = property(lambda self: self._ids["BOS"])
    eos_id = property(lambda self: self._ids["EOS"])
    bar_id = property(lambda self: self._ids["BAR"])
    hold_id = property(lambda self: self._ids["HOLD"])
    rest_id = property(lambda self: self._ids["REST"])

    def is_pitch(self, token_id: int) -> bool:
        """True if ``token_id`` is a ``P<pitch>`` token."""
        return token_id in self._pitch_of

    def pitch_of(self, token_id: int) -> int | None:
        """The MIDI pitch of a ``P<pitch>`` id, else None."""
        return self._pitch_of.get(token_id)

    def pitch_id(self, pitch: int) -> int:
        """The id of ``P<pitch>`` (pitch 0..127)."""
        if isinstance(pitch, bool) or not isinstance(pitch, int) or not 0 <= pitch <= 127:
            raise ParameterError(f"pitch must be a MIDI number 0..127, got {pitch!r}", field="pitch")
        return self.pitch_ids[pitch]

    def key_id(self, tonic: int, mode: str) -> int:
        return self.id(f"KEY_{tonic}_{mode}")

    def meter_id(self, numerator: int, denominator: int) -> int:
        """``METER_<n>_<d>`` for a supported meter, else ``METER_other``."""
        token = f"METER_{numerator}_{denominator}"
        return self._ids.get(token, self._ids["METER_other"])

    def voices_id(self, voices: int) -> int:
        return self.id(f"VOICES_{voices}")

    def to_dict(self, *, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """JSON-ready description (format, version, tokens, optional metadata such as steps_per_beat)."""
        return {
            "format": VOCAB_FORMAT,
            "version": VOCAB_VERSION,
            "size": self.size,
            "tokens": list(self.tokens),
            "metadata": dict(metadata or {}),
        }

    def save(self, path: str | Path, *, metadata: dict[str, Any] | None = None) -> Path:
        """Write the vocabulary as JSON (for model cards and checkpoints); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(metadata=metadata), indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        """Read a vocabulary written by `save`."""
        path = Path(path)
        if not path.is_file():
            raise InputFileError(f"vocabulary file not found: {path}", field="path")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputFileError(f"{path} is not a JSON vocabulary ({exc})", field="path") from exc
        if not isinstance(data, dict) or data.get("format") != VOCAB_FORMAT:
            raise InputFileError(f"{path} is not a {VOCAB_FORMAT} vocabulary", field="path")
        if data.get("version") != VOCAB_VERSION or not isinstance(data.get("tokens"), list):
            raise InputFileError(f"{path}: unsupported vocabulary version {data.get('version')!r}")
        return cls(data["tokens"])


VOCAB = Vocabulary()


def save_vocabulary(
    path: str | Path, *, vocab: Vocabulary = VOCAB, metadata: dict[str, Any] | None = None
) -> Path:
    """Write ``vocab`` (default: the standard vocabulary) as JSON."""
    return vocab.save(path, metadata=metadata)


def load_vocabulary(path: str | Path) -> Vocabulary:
    """Read a vocabulary JSON written by `save_vocabulary`."""
    return Vocabulary.load(path)


# ------------------------------------------------------------------------------------------- encoding


def _check_steps(steps_per_beat: int) -> int:
    if isinstance(steps_per_beat, bool) or not isinstance(steps_per_beat, int):
        raise ParameterError(
            f"steps_per_beat must be an integer, got {steps_per_beat!r}", field="steps_per_beat"
        )
    if not 1 <= steps_per_beat <= MAX_STEPS_PER_BEAT:
        raise ParameterError(
            f"steps_per_beat must be 1..{MAX_STEPS_PER_BEAT}, got {steps_per_beat}", field="steps_per_beat"
        )
    return steps_per_beat


def bar_steps(time_signature: tuple[int, int], steps_per_beat: int = 4) -> int:
    """Grid steps in one bar; ParameterError if the bar is not a whole number of steps."""
    numerator, denominator = time_signature
    steps = numerator * 4 * steps_per_beat / denominator
    if steps < 1 or abs(steps - round(steps)) > 1e-9:
        raise ParameterError(
            f"a {numerator}/{denominator} bar is not a whole number of steps "
            f"at steps_per_beat={steps_per_beat}",
            field="steps_per_beat",
        )
    return round(steps)


def voice_step_ids(
    part: Part, *, n_steps: int, steps_per_beat: int = 4, vocab: Vocabulary = VOCAB
) -> list[int]:
    """One step token id per grid step for a monophonic part (already on the grid): P / HOLD / REST."""
    grid = [vocab.rest_id] * n_steps
    for note in sorted(part.notes, key=lambda n: n.start):
        start = round(note.start * steps_per_beat)
        end = min(round(note.end * steps_per_beat), n_steps)
        if start < 0:
            raise ParameterError(f"part {part.name!r} has a note before beat 0 ({note.start})", field="score")
        if start >= n_steps:
            continue
        grid[start] = vocab.pitch_id(note.pitch)
        for step in range(start + 1, end):
            grid[step] = vocab.hold_id
    return grid


def melody_step_ids(
    melody: Part,
    *,
    n_bars: int | None = None,
    time_signature: tuple[int, int] = (4, 4),
    steps_per_beat: int = 4,
    vocab: Vocabulary = VOCAB,
) -> list[int]:
    """The soprano token of every step for a melody (quantized, then checked monophonic) — what a
    harmonizer forces at voice 0 of each step. Covers ``n_bars`` bars (default: enough for the melody)."""
    _check_steps(steps_per_beat)
    part = quantize_part(melody, steps_per_beat=steps_per_beat)
    if not is_monophonic(part):
        raise ParameterError(f"melody part {melody.name!r} is polyphonic", field="melody")
    per_bar = bar_steps(time_signature, steps_per_beat)
    end = max((round(n.end * steps_per_beat) for n in part.notes), default=0)
    bars = n_bars if n_bars is not None else max(1, math.ceil(end / per_bar))
    return voice_step_ids(part, n_steps=bars * per_bar, steps_per_beat=steps_per_beat, vocab=vocab)


def encode(
    score: Score,
    *,
    voices: int | None = None,
    steps_per_beat: int = 4,
    vocab: Vocabulary = VOCAB,
) -> list[int]:
    """Encode the pitched parts of ``score`` (quantized to the grid first) as voice-grid token ids.

    ``voices`` fixes the number of voices (missing voices are all REST); every part must be monophonic
    after quantization, else ParameterError naming the part (see `transform.split_voices` and
    `transform.make_monophonic`).
    """
    _check_steps(steps_per_beat)
    parts = [p for p in score.parts if not p.is_drum]
    if not parts:
        raise ParameterError("score has no pitched parts to encode", field="score")
    n_voices = len(parts) if voices is None else voices
    if isinstance(n_voices, bool) or not isinstance(n_voices, int) or not 1 <= n_voices <= MAX_VOICES:
        raise ParameterError(f"voices must be an integer 1..{MAX_VOICES}, got {n_voices!r}", field="voices")
    if len(parts) > n_voices:
        raise ParameterError(f"score has {len(parts)} pitched parts but voices={n_voices}", field="voices")
    quantized = [quantize_part(p, steps_per_beat=steps_per_beat) for p in parts]
    for part in quantized:
        if not is_monophonic(part):
            raise ParameterError(
                f"part {part.name!r} is polyphonic; split it with split_voices or make_monophonic first",
                field="score",
            )
    per_bar = bar_steps(score.time_signature, steps_per_beat)
    end = max((round(n.end * steps_per_beat) for p in quantized for n in p.notes), default=0)
    n_bars = max(1, math.ceil(end / per_bar))
    grids = [
        voice_step_ids(p, n_steps=n_bars * per_bar, steps_per_beat=steps_per_beat, vocab=vocab)
        for p in quantized
    ]
    grids += [[vocab.rest_id] * (n_bars * per_bar)] * (n_voices - len(grids))
    ids = [
        vocab.bos_id,
        vocab.key_id(*_score_key(score, quantized)),
        vocab.meter_id(*score.time_signature),
        vocab.voices_id(n_voices),
    ]
    for bar in range(n_bars):
        ids.append(vocab.bar_id)
        for step in range(bar * per_bar, (bar + 1) * per_bar):
            ids.extend(grid[step] for grid in grids)
    ids.append(vocab.eos_id)
    return ids


def _score_key(score: Score, parts: list[Part]) -> tuple[int, str]:
    if score.key:
        return parse_key(score.key)
    return estimate_key((n.pitch, n.duration) for p in parts for n in p.notes)


# ------------------------------------------------------------------------------------------- decoding


def decode(
    ids: Iterable[int],
    *,
    steps_per_beat: int = 4,
    tempo: float = 100.0,
    programs: int | Sequence[int] = 0,
    velocity: int = 80,
    names: Sequence[str] | None = None,
    vocab: Vocabulary = VOCAB,
) -> Score:
    """Turn voice-grid token ids back into a `Score` (one part per voice, velocity ``velocity``).

    Decoding stops at EOS and skips PAD; a trailing incomplete step is dropped; a HOLD with no
    sounding note is read as REST (so sampled sequences always decode).
    """
    _check_steps(steps_per_beat)
    if not isinstance(tempo, int | float) or not 1.0 <= float(tempo) <= 1000.0:
        raise ParameterError(f"tempo must be 1..1000 BPM, got {tempo!r}", field="tempo")
    if isinstance(velocity, bool) or not isinstance(velocity, int) or not 1 <= velocity <= 127:
        raise ParameterError(f"velocity must be 1..127, got {velocity!r}", field="velocity")
    header, body = _split_header([int(i) for i in ids], vocab)
    n_voices = header.get("voices")
    if n_voices is None:
        raise ParameterError("token sequence has no VOICES_<n> token", field="ids")
    steps, bar_starts = _body_steps(body, n_voices, vocab)
    meter = header.get("meter") or _meter_from_bars(bar_starts, len(steps), steps_per_beat)
    parts = []
    for voice in range(n_voices):
        notes = _voice_notes([step[voice] for step in steps], steps_per_beat, velocity, vocab)
        parts.append(
            Part(
                name=_voice_name(voice, n_voices, names),
                notes=notes,
                program=_program(programs, voice, n_voices),
            )
        )
    key = header.get("key")
    return Score(parts=parts, tempo=float(tempo), key=key_name(*key) if key else None, time_signature=meter)


def _split_header(ids: list[int], vocab: Vocabulary) -> tuple[dict[str, Any], list[tuple[int, int]]]:
    """Read BOS/KEY/METER/VOICES from the front; return them and the (position, id) body up to EOS."""
    header: dict[str, Any] = {}
    body: list[tuple[int, int]] = []
    for position, token_id in enumerate(ids):
        token = vocab.token(token_id)
        if token == "EOS":
            break
        if token in ("PAD", "BOS"):
            continue
        if token.startswith(("KEY_", "METER_", "VOICES_")):
            if body:
                raise ParameterError(
                    f"header token {token} at position {position} after the music", field="ids"
                )
            _read_header_token(token, header)
        else:
            body.append((position, token_id))
    return header, body


def _read_header_token(token: str, header: dict[str, Any]) -> None:
    kind, _, rest = token.partition("_")
    if kind == "KEY":
        tonic, mode = rest.split("_")
        header["key"] = (int(tonic), mode)
    elif kind == "METER":
        header["meter"] = None if rest == "other" else tuple(int(x) for x in rest.split("_"))
    else:
        header["voices"] = int(rest)


def _body_steps(
    body: list[tuple[int, int]], n_voices: int, vocab: Vocabulary
) -> tuple[list[list[int]], list[int]]:
    """Group step tokens into steps of ``n_voices``; returns the steps and the step index of each BAR."""
    steps: list[list[int]] = []
    bar_starts: list[int] = []
    current: list[int] = []
    for position, token_id in body:
        if token_id == vocab.bar_id:
            if current:
                raise ParameterError(f"BAR at position {position} in the middle of a time step", field="ids")
            bar_starts.append(len(steps))
            continue
        current.append(token_id)
        if len(current) == n_voices:
            steps.append(current)
            current = []
    return steps, bar_starts


def _meter_from_bars(bar_starts: list[int], n_steps: int, steps_per_beat: int) -> tuple[int, int]:
    """Guess the meter of a METER_other sequence from the length of its first bar."""
    if not bar_starts:
        return (4, 4)
    ends = [*bar_starts[1:], n_steps]
    length = ends[0] - bar_starts[0]
    eighths = length * 2 / steps_per_beat
    if length <= 0 or abs(eighths - round(eighths)) > 1e-9:
        return (4, 4)
    quarters = length / steps_per_beat
    if abs(quarters - 8) < 1e-9:
        return (4, 2)  # the usual spelling of an eight-quarter bar (Renaissance polyphony, Essen tunes)
    if abs(quarters - round(quarters)) < 1e-9:
        return (round(quarters), 4)
    return (round(eighths), 8)


def _voice_notes(tokens: list[int], steps_per_beat: int, velocity: int, vocab: Vocabulary) -> list[Note]:
    notes: list[Note] = []
    pitch: int | None = None
    start = 0

    def close(end: int) -> None:
        if pitch is not None:
            notes.append(Note(pitch, start / steps_per_beat, (end - start) / steps_per_beat, velocity))

    for step, token_id in enumerate(tokens):
        new_pitch = vocab.pitch_of(token_id)
        if new_pitch is not None:
            close(step)
            pitch, start = new_pitch, step
        elif token_id != vocab.hold_id:
            if token_id != vocab.rest_id:
                raise ParameterError(
                    f"token {vocab.token(token_id)} cannot appear inside a time step", field="ids"
                )
            close(step)
            pitch = None
    close(len(tokens))
    return notes


def _voice_name(voice: int, n_voices: int, names: Sequence[str] | None) -> str:
    if names is not None:
        if len(names) != n_voices:
            raise ParameterError(f"names has {len(names)} entries for {n_voices} voices", field="names")
        return str(names[voice])
    return VOICE_NAMES_4[voice] if n_voices == 4 else f"Voice {voice + 1}"


def _program(programs: int | Sequence[int], voice: int, n_voices: int) -> int:
    if isinstance(programs, int) and not isinstance(programs, bool):
        chosen = programs
    else:
        if len(programs) != n_voices:
            raise ParameterError(
                f"programs has {len(programs)} entries for {n_voices} voices", field="programs"
            )
        chosen = programs[voice]
    if isinstance(chosen, bool) or not isinstance(chosen, int) or not 0 <= chosen <= 127:
        raise ParameterError(f"GM program must be 0..127, got {chosen!r}", field="programs")
    return chosen


# ---------------------------------------------------------------------------------------------- text


def tokens_to_text(ids: Iterable[int], *, vocab: Vocabulary = VOCAB, bar_lines: bool = False) -> str:
    """Token ids as space-separated token names (each BAR on a new line if ``bar_lines``)."""
    words = [vocab.token(int(i)) for i in ids]
    if not bar_lines:
        return " ".join(words)
    return " ".join(words).replace(" BAR ", "\nBAR ")


def text_to_tokens(text: str, *, vocab: Vocabulary = VOCAB) -> list[int]:
    """Inverse of `tokens_to_text`."""
    return [vocab.id(word) for word in text.split()]
