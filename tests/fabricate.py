"""Fabricated source trees in the exact layouts users download, with real audio written here.

Real MUSDB18 and MagnaTagATune cannot be downloaded in tests, so these helpers write small trees of the
same shape (folders, file names, CSV dialect) filled with tones, noise and drum-like clicks:

- `make_musdb_tree`: MUSDB18-HQ (``train/<Track>/{mixture,drums,bass,other,vocals}.wav``) or MUSDB18
  (``train/<Track>.stem.mp4``, needs ffmpeg);
- `make_mtt_tree`: ``annotations_final.csv`` (tab-separated, quoted, 188 tags) + folders 0-f of mp3s;
- `make_messy_folder`: good audio next to corrupt, empty, truncated, renamed-garbage and odd files;
- `make_midi_folder`: melodies, a four-part piece, a MIDI with no notes and a garbage .mid.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

from tunesmith.symbolic.io import write_midi
from tunesmith.symbolic.score import Note, Part, Score

MUSDB_STEMS = ("mixture", "drums", "bass", "other", "vocals")
# One real MUSDB18 validation track name (so the official valid list applies), one train, one test.
MUSDB_TRACKS: Mapping[str, Sequence[str]] = {
    "train": ("Actions - One Minute Smile", "Fabricated Band - Train Song"),
    "test": ("Fabricated Duo - Test Song",),
}
# The 188 tag columns of annotations_final.csv, in the file's order.
MTT_TAGS = (
    "no voice", "singer", "duet", "plucking", "hard rock", "world", "bongos", "harpsichord", "female singing",
    "clasical", "sitar", "chorus", "female opera", "male vocal", "vocals", "clarinet", "heavy", "silence",
    "beats", "men", "woodwind", "funky", "no strings", "chimes", "foreign", "no piano", "horns", "classical",
    "female", "no voices", "soft rock", "eerie", "spacey", "jazz", "guitar", "quiet", "no beat", "banjo",
    "electric", "solo", "violins", "folk", "female voice", "wind", "happy", "ambient", "new age", "synth",
    "funk", "no singing", "middle eastern", "trumpet", "percussion", "drum", "airy", "voice", "repetitive",
    "birds", "space", "strings", "bass", "harpsicord", "medieval", "male voice", "girl", "keyboard",
    "acoustic", "loud", "classic", "string", "drums", "electronic", "not classical", "chanting", "no violin",
    "not rock", "no guitar", "organ", "no vocal", "talking", "choral", "weird", "opera", "soprano", "fast",
    "acoustic guitar", "electric guitar", "male singer", "man singing", "classical guitar", "country",
    "violin", "electro", "reggae", "tribal", "dark", "male opera", "no vocals", "irish", "electronica",
    "horn", "operatic", "arabic", "lol", "low", "instrumental", "trance", "chant", "strange", "drone",
    "synthesizer", "heavy metal", "modern", "disco", "bells", "man", "deep", "fast beat", "industrial",
    "hard", "harp", "no flute", "jungle", "pop", "lute", "female vocal", "oboe", "mellow", "orchestral",
    "viola", "light", "echo", "piano", "celtic", "male vocals", "orchestra", "eastern", "old", "flutes",
    "punk", "spanish", "sad", "sax", "slow", "male", "blues", "vocal", "indian", "no singer", "scary",
    "india", "woman", "woman singing", "rock", "dance", "piano solo", "guitars", "no drums", "jazzy",
    "singing", "cello", "calm", "female vocals", "voices", "different", "techno", "clapping", "house",
    "monks", "flute", "not opera", "not english", "oriental", "beat", "upbeat", "soft", "noise", "choir",
    "female singer", "rap", "metal", "hip hop", "quick", "water", "baroque", "women", "fiddle", "english",
)
MTT_FOLDERS = "0123456789abcdef"
MTT_CLIP_SECONDS = 29.1
MTT_RARE_TAG = "lol"  # given alone to one clip: a clip with no top-50 tag
# The tags usually found in MagnaTagATune's top 50 (besides "guitar", which every fabricated clip has).
MTT_TOP_POOL = (
    "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano", "ambient",
    "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing", "vocals", "no vocals",
    "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop", "soft", "sitar",
    "solo", "man", "classic", "choir", "voice", "new age", "dance", "male voice", "female vocal", "beats",
    "harp", "cello", "no voice", "weird", "country", "metal", "female voice", "choral",
)


# ------------------------------------------------------------------------------------------- signals


def tone(freq: float, seconds: float, sr: int, *, amp: float = 0.3, vibrato: float = 0.0) -> np.ndarray:
    """A sine (optionally with 5 Hz vibrato of ``vibrato`` semitones), float32 mono."""
    t = np.arange(round(seconds * sr)) / sr
    if vibrato:
        inst = freq * 2.0 ** (vibrato / 12.0 * np.sin(2 * np.pi * 5.0 * t))
        phase = 2 * np.pi * np.cumsum(inst) / sr
    else:
        phase = 2 * np.pi * freq * t
    return (amp * np.sin(phase)).astype(np.float32)


def noise(seconds: float, sr: int, *, amp: float = 0.1, seed: int = 0) -> np.ndarray:
    return (amp * np.random.default_rng(seed).standard_normal(round(seconds * sr))).astype(np.float32)


def clicks(seconds: float, sr: int, *, bpm: float = 120.0, amp: float = 0.6, seed: int = 0) -> np.ndarray:
    """Drum-like hits: a decaying low thump plus a noise burst on every beat."""
    n = round(seconds * sr)
    y = np.zeros(n, dtype=np.float32)
    hit_len = min(n, round(0.12 * sr))
    t = np.arange(hit_len) / sr
    env = np.exp(-t * 40.0)
    rng = np.random.default_rng(seed)
    hit = env * (np.sin(2 * np.pi * 60.0 * t) + 0.5 * rng.standard_normal(hit_len))
    for start in range(0, n, max(1, round(60.0 / bpm * sr))):
        stop = min(n, start + hit_len)
        y[start:stop] += (amp * hit[: stop - start]).astype(np.float32)
    return y


def musdb_stems(seconds: float, sr: int, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Five stereo stems (frames, 2) of one fabricated track; vocals are silent for the first half."""
    n = round(seconds * sr)
    drums = clicks(seconds, sr, bpm=100 + 10 * seed, amp=0.4, seed=seed)
    bass = tone(55.0 * (1 + seed % 3), seconds, sr, amp=0.25)
    other = sum(tone(f, seconds, sr, amp=0.08) for f in (220.0, 277.2, 329.6)) + noise(seconds, sr, amp=0.01,
                                                                                        seed=seed)
    vocals = tone(440.0 + 20 * seed, seconds, sr, amp=0.2, vibrato=0.5)
    vocals[: round(0.5 * n)] = 0.0  # an instrumental intro: the vocals stem is digital silence there
    mono = {"drums": drums, "bass": bass, "other": other.astype(np.float32), "vocals": vocals}
    stems = {k: np.stack([v, 0.9 * v], axis=1) for k, v in mono.items()}
    stems["mixture"] = np.clip(sum(stems.values()), -1.0, 1.0)
    return {k: stems[k].astype(np.float32) for k in MUSDB_STEMS}


# ------------------------------------------------------------------------------------------- MUSDB18


def make_musdb_tree(
    root: Path,
    *,
    hq: bool = True,
    tracks: Mapping[str, Sequence[str]] | None = None,
    seconds: float = 12.5,
    sr: int = 44100,
) -> Path:
    """Write a MUSDB18-HQ tree (``hq=True``: WAV stems, 16-bit stereo) or a MUSDB18 tree of
    ``.stem.mp4`` files (five AAC streams: mixture, drums, bass, other, vocals; needs ffmpeg)."""
    root = Path(root)
    if not hq and shutil.which("ffmpeg") is None:
        raise RuntimeError("writing .stem.mp4 files needs the ffmpeg program (apt-get install ffmpeg)")
    for subset, names in (tracks or MUSDB_TRACKS).items():
        for seed, name in enumerate(names):
            stems = musdb_stems(seconds, sr, seed=seed + (10 if subset == "test" else 0))
            if hq:
                folder = root / subset / name
                folder.mkdir(parents=True, exist_ok=True)
                for stem, y in stems.items():
                    sf.write(str(folder / f"{stem}.wav"), y, sr, subtype="PCM_16")
            else:
                _write_stem_mp4(root / subset / f"{name}.stem.mp4", stems, sr)
    return root


def _write_stem_mp4(path: Path, stems: dict[str, np.ndarray], sr: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        command = ["ffmpeg", "-y", "-loglevel", "error"]
        for stem in MUSDB_STEMS:
            wav = Path(tmp) / f"{stem}.wav"
            sf.write(str(wav), stems[stem], sr, subtype="PCM_16")
            command += ["-i", str(wav)]
        for index in range(len(MUSDB_STEMS)):
            command += ["-map", f"{index}:a"]
        command += ["-c:a", "aac", "-b:a", "128k", "-f", "mp4", str(path)]
        subprocess.run(command, check=True, capture_output=True)


# ------------------------------------------------------------------------------------- MagnaTagATune


def mtt_song(folder: str) -> str:
    """The fabricated song whose clips all sit in ``folder`` (as in the real data)."""
    return f"fabricated_artist_{folder}-fabricated_album-0{int(folder, 16) % 9 + 1}-song_{folder}"


def _mtt_clip_tags(position: int, index: int, folder: str) -> set[str]:
    """Deterministic tags: "guitar" on every clip but the rare-tag one, plus 10 of the other tags that
    are MagnaTagATune's usual top 50, rotating so that each is on at least two clips."""
    if folder == "5" and index == 0:
        return {MTT_RARE_TAG}
    return {"guitar", *(MTT_TOP_POOL[(position * 10 + j) % len(MTT_TOP_POOL)] for j in range(10))}


def _mtt_audio(index: int, folder: str, seconds: float, sr: int) -> np.ndarray:
    k = int(folder, 16) * 3 + index
    y = tone(196.0 * 2 ** (k % 12 / 12), seconds, sr, amp=0.25) + noise(seconds, sr, amp=0.02, seed=k)
    if k % 2:
        y = y + clicks(seconds, sr, bpm=90 + 5 * k, amp=0.3, seed=k)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def make_mtt_tree(
    root: Path,
    *,
    clips_per_folder: int = 1,
    seconds: float = MTT_CLIP_SECONDS,
    sr: int = 16000,
    missing: int = 1,
) -> Path:
    """Write a MagnaTagATune tree: ``annotations_final.csv`` + folders 0-f of 16 kHz mono mp3 clips.

    Every folder holds ``clips_per_folder`` consecutive clips of one song (``<song>-<start>-<end>.mp3``).
    The CSV is tab-separated with every value double-quoted, as in the real file. The last ``missing``
    rows name clips that are not written (listed in the CSV, absent on disk). One clip (folder 5, first)
    carries only a rare tag, so it has no top-50 tag.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    clip_id = 2
    for folder in MTT_FOLDERS:
        (root / folder).mkdir(exist_ok=True)
        for index in range(clips_per_folder):
            start = 30 * index
            mp3_path = f"{folder}/{mtt_song(folder)}-{start}-{start + 29}.mp3"
            rows.append((str(clip_id), _mtt_clip_tags(len(rows), index, folder), mp3_path, index, folder))
            clip_id += 3 + index
    for n, (_, _, mp3_path, index, folder) in enumerate(rows):
        if n >= len(rows) - missing:
            continue
        sf.write(str(root / mp3_path), _mtt_audio(index, folder, seconds, sr), sr, format="MP3",
                 bitrate_mode="CONSTANT", compression_level=0.85)  # ~32 kbps CBR, like the real clips
    with open(root / "annotations_final.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", quotechar='"', quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(["clip_id", *MTT_TAGS, "mp3_path"])
        for clip, tags, mp3_path, _, _ in sorted(rows, key=lambda r: int(r[0])):
            writer.writerow([clip, *("1" if t in tags else "0" for t in MTT_TAGS), mp3_path])
    return root


# ---------------------------------------------------------------------------------- messy folders


def _midi_without_notes(path: Path) -> None:
    mid = mido.MidiFile(type=1)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    track.append(mido.Message("program_change", program=0, time=0))
    track.append(mido.MetaMessage("end_of_track", time=480))
    mid.tracks.append(track)
    mid.save(str(path))


def melody(pitches: Sequence[int], *, step: float = 1.0, name: str = "Melody", key: str = "C major") -> Score:
    """A one-part score of quarter notes (or ``step`` beats each)."""
    notes = [Note(p, i * step, step, 90) for i, p in enumerate(pitches)]
    return Score(parts=[Part(name=name, notes=notes, program=73)], tempo=100.0, key=key)


def make_messy_folder(root: Path) -> Path:
    """A folder of audio as users have it: good files (nested, several formats) next to bad ones.

    Good: ``tone.wav`` (9 s), ``nested/deeper/noise.flac`` (3 s), ``nested/clicks.ogg`` (5 s), ``short.wav``
    (1 s). Bad: ``bad/truncated.wav`` (cut mid-data), ``bad/empty.wav`` (0 bytes), ``bad/garbage.mp3``
    (random bytes), ``bad/dangling.wav`` (a link to nothing), ``notes.txt`` (unsupported). Also a MIDI
    file with no notes and a good melody MIDI (the minority modality), ``.DS_Store``, and a LICENSE.
    """
    root = Path(root)
    sr = 22050
    for sub in ("nested/deeper", "bad", "midi"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    sf.write(str(root / "tone.wav"), tone(330.0, 9.0, sr), sr, subtype="PCM_16")
    sf.write(str(root / "nested/deeper/noise.flac"), noise(3.0, sr, amp=0.2), sr)
    sf.write(str(root / "nested/clicks.ogg"), clicks(5.0, sr), sr, format="OGG", subtype="VORBIS")
    sf.write(str(root / "short.wav"), tone(660.0, 1.0, sr), sr, subtype="PCM_16")
    full = root / "bad" / "truncated.wav"
    sf.write(str(full), tone(440.0, 4.0, sr), sr, subtype="PCM_16")
    data = full.read_bytes()
    full.write_bytes(data[: len(data) // 2])
    (root / "bad" / "empty.wav").write_bytes(b"")
    (root / "bad" / "garbage.mp3").write_bytes(np.random.default_rng(7).bytes(4096))
    (root / "bad" / "dangling.wav").symlink_to(root / "bad" / "does-not-exist.wav")
    (root / "notes.txt").write_text("recorded in my kitchen\n")
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "LICENSE").write_text("CC0 1.0 (fabricated test audio)\n\nNo rights reserved.\n")
    _midi_without_notes(root / "midi" / "no_notes.mid")
    write_midi(melody([60, 62, 64, 65, 67, 65, 64, 62]), root / "midi" / "melody.mid")
    return root


def make_midi_folder(root: Path) -> Path:
    """A folder of symbolic files: two melodies (one also saved transposed), a four-part piece, a part of
    two-note chords, a flute over those chords, a MIDI with no notes, a garbage ``.mid`` and one WAV."""
    root = Path(root)
    (root / "tunes").mkdir(parents=True, exist_ok=True)
    tune = [60, 62, 64, 60, 64, 65, 67, 67, 69, 67, 65, 64, 62, 60, 62, 60]
    write_midi(melody(tune), root / "tunes" / "tune.mid")
    write_midi(melody([p + 5 for p in tune], key="F major"), root / "tunes" / "tune_in_f.mid")
    write_midi(melody([67, 69, 71, 72, 74, 72, 71, 69, 67, 66, 67, 69], step=0.5, key="G major"),
               root / "tunes" / "other.mid")
    voices = [[72, 74, 76, 77], [67, 67, 69, 69], [64, 65, 64, 65], [48, 50, 52, 53]]
    parts = [Part(name=n, notes=[Note(p, float(i), 1.0, 80) for i, p in enumerate(ps)])
             for n, ps in zip(("S", "A", "T", "B"), voices, strict=True)]
    write_midi(Score(parts=parts, tempo=90.0, key="C major"), root / "four_part.mid")
    chord_notes = [Note(p, float(i // 2), 1.0, 80) for i, p in enumerate([60, 64, 62, 65])]
    chords = Part(name="Piano", notes=chord_notes)
    write_midi(Score(parts=[chords], tempo=100.0), root / "chords.mid")
    flute = Part(name="Flute", notes=[Note(p, float(i), 1.0, 80) for i, p in enumerate([72, 74, 76, 77])],
                 program=73)
    write_midi(Score(parts=[flute, chords], tempo=100.0), root / "duet_with_chords.mid")
    _midi_without_notes(root / "empty_song.mid")
    (root / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01" + np.random.default_rng(3).bytes(64))
    sf.write(str(root / "stray.wav"), tone(440.0, 1.0, 16000), 16000, subtype="PCM_16")
    return root
