"""Hostile upload files: hypothesis strategies that make broken audio, MIDI, MusicXML and ABC files.

Each drawn :class:`Specimen` is a file (name, bytes), the attack that made it and the route it goes to
(``/v1/uploads``, ``/v1/analyses`` or ``/v1/verifications``). The attacks start from small valid files made here
(a sine in WAV, FLAC, OGG and MP3; a melody in MIDI, MusicXML, compressed MusicXML and ABC) and break them:
truncated, bytes overwritten in the header or anywhere, header fields set to extremes (absurd sample rates,
channel counts, huge declared lengths), MIDI event streams with absurd deltas and lengths, zip bombs and odd
archives in ``.mxl``, deeply nested XML and entity expansion, scores with very many notes (decode time), random
ABC, random bytes, a valid file under another type's name, an empty file.

Hypothesis draws the choices (which seed, offsets, values, sizes); the bytes are built from them here, so a
specimen of megabytes costs hypothesis a few dozen choices. Used by `tunesmith bench fuzz`
(:mod:`tunesmith.bench.fuzz`), the fuzz test and the schemathesis hooks of the tests.
"""

from __future__ import annotations

import functools
import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tunesmith.errors import DependencyError

ROUTES = {"upload": "/v1/uploads", "analysis": "/v1/analyses", "verification": "/v1/verifications"}
AUDIO = ("wav", "flac", "ogg", "mp3")
SCORES = ("mid", "musicxml", "mxl", "abc")
KINDS = AUDIO + SCORES
TAKES = {"wav": ("analysis", "verification"), "flac": ("analysis", "verification"),
         "ogg": ("analysis", "verification"), "mp3": ("analysis", "verification"),
         "mid": ("upload", "verification"), "musicxml": ("upload",), "mxl": ("upload",), "abc": ("upload",)}
EXTREMES = (0, 1, 2, 7, 255, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)
MB = 1 << 20


@dataclass(frozen=True)
class Specimen:
    attack: str
    kind: str
    filename: str
    data: bytes
    route: str  # "upload", "analysis" or "verification" (see ROUTES)

    @property
    def path(self) -> str:
        return ROUTES[self.route]


def _strategies() -> Any:
    try:
        from hypothesis import strategies
    except ImportError as exc:
        raise DependencyError("fuzzing needs hypothesis: pip install hypothesis (in tunesmith's dev extras)") from exc
    return strategies


# ------------------------------------------------------------------------------------------ valid seeds


@functools.cache
def seed_file(kind: str) -> bytes:
    """A small valid file of ``kind``: 1 s of a 440 Hz sine (audio) or an 8-note melody (scores)."""
    if kind in AUDIO:
        return _audio(kind)
    if kind == "mid":
        return midi_file([(60 + step, 240) for step in (0, 2, 4, 5, 7, 5, 4, 0)])
    if kind == "musicxml":
        return musicxml(8).encode()
    if kind == "mxl":
        return mxl({"score.xml": musicxml(8).encode()})
    if kind == "abc":
        return b"X:1\nT:Seed\nM:4/4\nL:1/4\nK:G\nGABc|dedB|\n"
    raise ValueError(kind)


def _audio(kind: str) -> bytes:
    import numpy as np
    import soundfile as sf

    sr = 22050
    y = (0.3 * np.sin(2 * np.pi * 440.0 * np.arange(sr) / sr)).astype(np.float32)
    buffer = io.BytesIO()
    fmt, subtype = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"),
                    "mp3": ("MP3", "MPEG_LAYER_III")}[kind]
    sf.write(buffer, y, sr, format=fmt, subtype=subtype)
    return buffer.getvalue()


def vlq(value: int) -> bytes:
    """A MIDI variable-length quantity (values above 0x0FFFFFFF are written anyway: an attack)."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def midi_file(notes: list[tuple[int, int]], *, division: int = 480, tracks: int | None = None,
              extra: bytes = b"", declared_length: int | None = None) -> bytes:
    """A format-0 MIDI file of (pitch, ticks) notes; ``extra`` events are put first, lengths may lie."""
    events = bytearray(extra)
    events += b"\x00\xff\x51\x03\x07\xa1\x20"  # 120 bpm
    for pitch, ticks in notes:
        events += b"\x00" + bytes([0x90, pitch & 0x7F, 80]) + vlq(ticks) + bytes([0x80, pitch & 0x7F, 0])
    events += b"\x00\xff\x2f\x00"
    head = b"MThd" + struct.pack(">IHHH", 6, 0, 1 if tracks is None else tracks, division)
    return head + b"MTrk" + struct.pack(">I", len(events) if declared_length is None else declared_length) + events


NOTE_XML = "<note><pitch><step>{step}</step><octave>4</octave></pitch><duration>1</duration><type>quarter</type></note>"


def musicxml(notes: int, *, inner: str = "", doctype: str = "") -> str:
    """A one-part MusicXML score of ``notes`` quarter notes (4 a bar); ``inner`` goes into the first bar."""
    bars = []
    for bar in range(max(1, (notes + 3) // 4)):
        head = ("<attributes><divisions>1</divisions><key><fifths>0</fifths></key><time><beats>4</beats>"
                "<beat-type>4</beat-type></time></attributes>" + inner) if bar == 0 else ""
        body = "".join(NOTE_XML.format(step="CDEFGAB"[(bar * 4 + i) % 7]) for i in range(min(4, notes - bar * 4)))
        bars.append(f'<measure number="{bar + 1}">{head}{body}</measure>')
    return (f'<?xml version="1.0" encoding="UTF-8"?>{doctype}<score-partwise version="3.1"><part-list>'
            f'<score-part id="P1"><part-name>x</part-name></score-part></part-list><part id="P1">{"".join(bars)}'
            "</part></score-partwise>")


CONTAINER = (b'<?xml version="1.0"?><container><rootfiles><rootfile full-path="{name}" '
             b'media-type="application/vnd.recordare.musicxml+xml"/></rootfiles></container>')


def mxl(entries: dict[str, bytes], *, root: str | None = None) -> bytes:
    """A compressed MusicXML archive (META-INF/container.xml naming ``root``, default the first entry)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", "application/vnd.recordare.musicxml")
        archive.writestr("META-INF/container.xml", CONTAINER.replace(b"{name}", (root or next(iter(entries))).encode()))
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@functools.cache
def _deflated_zeros(megabytes: int) -> tuple[bytes, int]:
    """Raw deflate of ``megabytes`` MB of b"0" (XML-looking text), and its CRC-32: a zip bomb's payload."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = b"0" * MB
    parts, crc = [], 0
    for _ in range(megabytes):
        parts.append(compressor.compress(block))
        crc = zlib.crc32(block, crc)
    parts.append(compressor.flush())
    return b"".join(parts), crc


def zip_bomb(megabytes: int, *, declared: int | None = None) -> bytes:
    """An .mxl whose score unpacks to ``megabytes`` MB (declared as ``declared`` bytes, default the truth)."""
    payload, crc = _deflated_zeros(megabytes)
    size = megabytes * MB if declared is None else declared
    name = b"score.xml"
    container = CONTAINER.replace(b"{name}", name)
    files = [(b"META-INF/container.xml", zlib.crc32(container), container, len(container), 0)]
    files.append((name, crc, payload, size, 8))
    out, central = bytearray(), bytearray()
    for entry, entry_crc, data, raw_size, method in files:
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, entry_crc, len(data), raw_size,
                           len(entry), 0) + entry + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, entry_crc, len(data),
                               raw_size, len(entry), 0, 0, 0, 0, 0, offset) + entry
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(files), len(files), len(central), len(out), 0)
    return bytes(out + central + end)


# ------------------------------------------------------------------------------------------- attacks


def _overwrite(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for position, value in edits:
        if out:
            out[position % len(out)] = value
    return bytes(out)


def _set(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    size = struct.calcsize(fmt)
    struct.pack_into(fmt, out, offset, value & ((1 << (8 * size)) - 1))
    return bytes(out)


WAV_FIELDS = {"riff_size": (4, "<I"), "fmt_size": (16, "<I"), "format_code": (20, "<H"), "channels": (22, "<H"),
              "sample_rate": (24, "<I"), "byte_rate": (28, "<I"), "block_align": (32, "<H"),
              "bits": (34, "<H"), "data_size": (40, "<I")}
MIDI_FIELDS = {"header_length": (4, ">I"), "format": (8, ">H"), "tracks": (10, ">H"), "division": (12, ">H"),
               "track_length": (18, ">I")}


def _flac_streaminfo(data: bytes, field: str, value: int) -> bytes:
    """Set a STREAMINFO field of a FLAC file (sample rate 20 bits, channels-1 3, bits-1 5, total samples 36)."""
    out = bytearray(data)
    start = 8  # "fLaC" + the block header
    if field in ("min_block", "max_block"):
        struct.pack_into(">H", out, start + (0 if field == "min_block" else 2), value & 0xFFFF)
        return bytes(out)
    bits = int.from_bytes(out[start + 10:start + 18], "big")  # rate 20 | channels 3 | bps 5 | total 36
    shift, width = {"sample_rate": (44, 20), "channels": (41, 3), "bits": (36, 5), "total_samples": (0, 36)}[field]
    mask = ((1 << width) - 1) << shift
    bits = (bits & ~mask) | ((value & ((1 << width) - 1)) << shift)
    out[start + 10:start + 18] = bits.to_bytes(8, "big")
    return bytes(out)


def _attacks() -> dict[str, Callable[..., Any]]:
    """Each attack: a function of hypothesis's ``draw`` returning (kind, data)."""
    st = _strategies()
    extreme = st.one_of(st.sampled_from(EXTREMES), st.integers(0, 0xFFFFFFFF))

    def valid(draw):
        kind = draw(st.sampled_from(KINDS))
        return kind, seed_file(kind)

    def truncated(draw):
        kind = draw(st.sampled_from(KINDS))
        data = seed_file(kind)
        return kind, data[:draw(st.integers(0, len(data) - 1))]

    def mutated_header(draw):
        kind = draw(st.sampled_from(KINDS))
        data = seed_file(kind)
        edits = draw(st.lists(st.tuples(st.integers(0, min(len(data), 96) - 1), st.integers(0, 255)),
                              min_size=1, max_size=8))
        return kind, _overwrite(data, edits)

    def mutated_body(draw):
        kind = draw(st.sampled_from(KINDS))
        data = seed_file(kind)
        edits = draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), min_size=1,
                              max_size=32))
        return kind, _overwrite(data, edits)

    def wav_header(draw):  # absurd sample rates, channel counts, sample sizes, huge declared lengths
        offset, fmt = WAV_FIELDS[draw(st.sampled_from(sorted(WAV_FIELDS)))]
        return "wav", _set(seed_file("wav"), offset, fmt, draw(extreme))

    def flac_header(draw):
        field = draw(st.sampled_from(("sample_rate", "channels", "bits", "total_samples", "min_block", "max_block")))
        value = draw(st.one_of(st.sampled_from((0, 1, 2**20 - 1, 2**36 - 1, 65535)), st.integers(0, 2**36 - 1)))
        return "flac", _flac_streaminfo(seed_file("flac"), field, value)

    def midi_header(draw):
        offset, fmt = MIDI_FIELDS[draw(st.sampled_from(sorted(MIDI_FIELDS)))]
        return "mid", _set(seed_file("mid"), offset, fmt, draw(extreme))

    def midi_events(draw):  # absurd deltas, tempi, lengths; notes never released; running status garbage
        ticks = st.one_of(st.sampled_from((0, 1, 0x0FFFFFFF, 0x7FFFFFFF)), st.integers(0, 1 << 20))
        notes = draw(st.lists(st.tuples(st.integers(0, 255), ticks), min_size=0, max_size=40))
        extra = draw(st.lists(st.sampled_from([
            b"\x00\xff\x51\x03\x00\x00\x00",  # tempo 0
            b"\x00\xff\x51\x03\xff\xff\xff",  # slowest tempo
            b"\x00\xff\x58\x04\x00\x00\x18\x08",  # 0/1 meter
            b"\x00\xff\x58\x04\xff\xff\x18\x08",  # 255/2**255 meter
            b"\x00\xf0\x8f\xff\xff\x7f\xf7",  # sysex declaring 4 GB
            b"\x00\xff\x01\x8f\xff\xff\x7fab",  # text declaring 4 GB
            b"\x00\x90\x3c",  # truncated note-on
            b"\x00\x3c\x40",  # running status without a status
            b"\x00\xff\x03\x00",  # empty name
            vlq(0x0FFFFFFF) + b"\x90\x3c\x40",  # the longest delta
        ]), max_size=6))
        division = draw(st.sampled_from((0, 1, 96, 480, 0x7FFF, 0xE250, 0xFFFF)))
        tracks = draw(st.sampled_from((None, 0, 2, 0xFFFF)))
        lying = draw(st.sampled_from((None, 0, 3, 0x7FFFFFFF)))
        return "mid", midi_file(notes, division=division, tracks=tracks, extra=b"".join(extra),
                                declared_length=lying)

    def zip_archive(draw):  # zip bombs, lying sizes, nested archives, many entries, odd paths
        form = draw(st.sampled_from(("bomb", "lying_size", "nested", "many_entries", "no_score", "traversal",
                                     "stored_garbage")))
        if form == "bomb":
            return "mxl", zip_bomb(draw(st.sampled_from((8, 64, 256, 1024))))
        if form == "lying_size":
            return "mxl", zip_bomb(8, declared=draw(st.sampled_from((0, 10, 0xFFFFFFFF))))
        if form == "nested":
            inner = seed_file("mxl")
            for _ in range(draw(st.integers(1, 5))):
                inner = mxl({"score.mxl": inner})
            return "mxl", inner
        if form == "many_entries":
            count = draw(st.sampled_from((100, 2000)))
            entries = {f"part{i}.xml": b"<a/>" for i in range(count)}
            return "mxl", mxl({"score.xml": musicxml(4).encode(), **entries})
        if form == "no_score":
            return "mxl", mxl({"readme.txt": b"nothing here"})
        if form == "traversal":
            return "mxl", mxl({"../../../../tmp/tunesmith-zip-slip.xml": musicxml(4).encode()})
        return "mxl", b"PK\x03\x04" + draw(st.binary(max_size=512))

    def deep_xml(draw):
        depth = draw(st.sampled_from((100, 1000, 10_000, 100_000, 1_000_000)))
        tag = draw(st.sampled_from(("a", "note", "measure", "part")))
        return "musicxml", musicxml(4, inner=f"<{tag}>" * depth + f"</{tag}>" * depth).encode()

    def xml_entities(draw):
        form = draw(st.sampled_from(("laughs", "quadratic", "external_file", "external_url", "parameter")))
        if form == "laughs":
            levels = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
            doctype, inner = f'<!DOCTYPE score-partwise [<!ENTITY l0 "ha">{levels}]>', "<words>&l9;</words>"
        elif form == "quadratic":
            doctype = f'<!DOCTYPE score-partwise [<!ENTITY a "{"x" * 50_000}">]>'
            inner = "<words>" + "&a;" * 50_000 + "</words>"
        elif form == "external_file":
            doctype, inner = '<!DOCTYPE score-partwise [<!ENTITY e SYSTEM "file:///etc/passwd">]>', "<words>&e;</words>"
        elif form == "external_url":  # loopback only, a port nobody listens on
            doctype, inner = '<!DOCTYPE score-partwise SYSTEM "http://127.0.0.1:9/x.dtd">', ""
        else:
            doctype = ('<!DOCTYPE score-partwise [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>')
            inner = ""
        return "musicxml", musicxml(4, inner=f"<direction><direction-type>{inner}</direction-type></direction>"
                                    if inner else "", doctype=doctype).encode()

    def many_notes(draw):  # decode time and memory: a score of very many notes inside the size limit
        kind = draw(st.sampled_from(("abc", "musicxml", "mid")))
        notes = draw(st.sampled_from((500, 5_000, 50_000, 400_000)))
        if kind == "abc":
            return kind, b"X:1\nT:many\nM:4/4\nL:1/8\nK:C\n" + b"CDEF GABc|" * (notes // 8) + b"\n"
        if kind == "musicxml":
            return kind, musicxml(min(notes, 100_000)).encode()
        return kind, midi_file([(60 + i % 24, 60) for i in range(notes)])

    def abc_text(draw):  # odd headers, then a body of ABC tokens
        headers = draw(st.lists(st.sampled_from([
            "L:1/0", "L:0/0", "L:1/99999999", "M:0/0", "M:99999/1", "M:none", "Q:0", "Q:1/4=0", "Q:1/4=99999999",
            "K:Zb", "K:C clef=none", "K:C transpose=999999", "V:1", "V:99999", "T:" + "t" * 5000, "%%score (1 2",
            "P:ABABABAB", "I:linebreak $", "U:T=!trill!", "w:" + "la-" * 500,
        ]), max_size=6))
        body = draw(st.text(alphabet="ABCDEFGabcdefgz^_=,'/23456789|:[]()<>-~. {}!+\"%&", max_size=800))
        repeat = draw(st.sampled_from((1, 10, 200)))
        text = "X:1\nT:odd\n" + "".join(h + "\n" for h in headers) + "K:C\n" + body * repeat + "\n"
        return "abc", text.encode("utf-8")

    def random_bytes(draw):
        return draw(st.sampled_from(KINDS)), draw(st.binary(max_size=4096))

    def wrong_type(draw):  # a valid file of one kind under another kind's name (and route)
        real, named = draw(st.sampled_from(KINDS)), draw(st.sampled_from(KINDS))
        return named, seed_file(real)

    def empty(draw):
        return draw(st.sampled_from(KINDS)), b""

    return {f.__name__: f for f in (valid, truncated, mutated_header, mutated_body, wav_header, flac_header,
                                    midi_header, midi_events, zip_archive, deep_xml, xml_entities, many_notes,
                                    abc_text, random_bytes, wrong_type, empty)}


def specimens(attacks: tuple[str, ...] | None = None) -> Any:
    """A hypothesis strategy of :class:`Specimen` (``attacks``: only these; default all of :func:`attack_names`)."""
    st = _strategies()
    table = _attacks()
    chosen = attacks or tuple(table)

    @st.composite
    def specimen(draw: Callable[..., Any]) -> Specimen:
        attack = draw(st.sampled_from(chosen))
        kind, data = table[attack](draw)
        name = draw(st.sampled_from(("plain", "plain", "plain", "no_extension", "traversal", "odd")))
        stem = {"plain": attack, "no_extension": attack, "traversal": f"../../{attack}",
                "odd": f"{attack} ☃ %2e%2e"}[name]
        filename = stem if name == "no_extension" else f"{stem}.{kind}"
        routes = TAKES[kind]
        route = draw(st.sampled_from(routes + routes + ("upload", "analysis", "verification")))  # mostly its own
        return Specimen(attack=attack, kind=kind, filename=filename, data=data, route=route)

    return specimen()


def attack_names() -> tuple[str, ...]:
    return tuple(_attacks())
