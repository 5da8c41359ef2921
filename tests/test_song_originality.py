"""The originality gate of generated songs, per track, against the grooves dataset a song model's card names: every
track of a generated song reported (drums reported, not gated), a track copied from a training record flagged (and
a request that rejects near-copies refused), tracks kept from a user's input not judged, the index cached under
the cache directory by the dataset's manifest hash, and a dataset that is not here reported as unchecked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.test_song_input import band_tracks as band_midi_tracks
from tests.test_song_input import midi_file
from tests.tiny import tiny_song
from tunesmith.cli import main
from tunesmith.cli.generate import originality_line
from tunesmith.data.corpora.grooves import build_grooves, iter_songs, role_notes
from tunesmith.data.dataset import Dataset
from tunesmith.errors import DatasetError
from tunesmith.families import Work
from tunesmith.families.song import KEPT, originality_tracks
from tunesmith.generation.catalog import local_entry
from tunesmith.generation.originality import OriginalityGate, OriginalityRejected, track_index_for_dataset
from tunesmith.generation.pipeline import _originality_check, draw
from tunesmith.provenance.song_originality import (
    BOUND_LENGTH,
    GATED_ROLES,
    RunIndex,
    TrackIndex,
    check_song,
    grid_notes,
    note_tokens,
    onset_tokens,
    role_tokens,
)
from tunesmith.symbolic.score import Note, Part, Score

THRESHOLD = 12


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A real grooves build of four songs (a build this small puts them all in the train split)."""
    out = tmp_path_factory.mktemp("grooves") / "grooves"
    build_grooves(out, limit=4, workers=2)
    return out


@pytest.fixture(scope="module")
def weights(tmp_path_factory, corpus) -> Path:
    """A tiny song model whose card names the corpus, and one (`song-nodata`) naming a dataset that is not here."""
    directory = tmp_path_factory.mktemp("weights")
    for name, path in (("song", str(corpus)), ("song-nodata", str(directory / "no-such-grooves"))):
        card_path = tiny_song(directory, name)
        card = json.loads(card_path.read_text())
        card["data"] = {"kind": "grooves", "path": path, "build_command": "tunesmith data build grooves"}
        card_path.write_text(json.dumps(card))
    return directory


@pytest.fixture
def cli(weights, tmp_path, monkeypatch, capsys):
    """`tunesmith generate song ...` on a tiny model (its card: ``model``): (exit code, the JSON report)."""
    monkeypatch.setenv("TUNESMITH_DATA_DIR", str(tmp_path / "data"))

    def run(*args: str, model: str = "song") -> tuple[int, dict | str]:
        code = main(["generate", "song", "--checkpoint", str(weights / f"{model}.json"), "--seed", "3", "--json",
                     "-o", str(tmp_path / "out.mid"), *args])
        out, err = capsys.readouterr()
        return code, (json.loads(out) if code == 0 else err)
    return run


@pytest.fixture(scope="module")
def record(corpus):
    """The first training record, its notes by band role as the song model reads them."""
    song = next(iter_songs(corpus, "train"))
    return song, role_notes(song)


def _copied_score(record, shift: int = 3) -> Score:
    """A song whose tracks are the record's, the pitched ones moved up ``shift`` semitones (the gate reads
    intervals, so a copy in another key is still a copy)."""
    song, by_role = record
    parts = [Part(role, [Note(n.pitch + (0 if role == "drums" else shift), n.start, n.duration, n.velocity)
                         for n in notes], is_drum=role == "drums") for role, notes in by_role.items()]
    return Score(parts=parts, tempo=song.score.tempo, time_signature=song.score.time_signature)


def _fresh_line(bars: int, seed: int) -> list[Note]:
    """A random line of quarter and half notes over ``bars`` 4/4 bars."""
    rng = np.random.default_rng(seed)
    out, t = [], 0.0
    while t < 4 * bars:
        d = float(rng.choice([1.0, 2.0, 0.5]))
        out.append(Note(int(rng.integers(55, 75)), t, d, 80))
        t += d
    return out


# ------------------------------------------------------------------------------------------ a generated song


def test_a_generated_song_reports_every_track(cli, corpus, tmp_path):
    code, report = cli("--style", "bossa nova", "--bars", "8")
    assert code == 0, report
    orig = report["originality"]
    assert orig["status"] == "checked" and orig["threshold"] == THRESHOLD and orig["mode"] == "report"
    # the gate's index was there, so the sampler wrote the song with the copy guard, and the signed params say so
    assert report["copy_guard"] is True and report["copy_redraws"] >= 0 and report["copy_notes"] >= 0
    assert report["params"]["copy_guard"] is True
    tracks = orig["tracks"]
    assert [t["name"] for t in tracks] == [t["name"] for t in report["tracks"]]
    records = {r.id for r in Dataset(corpus).records}
    for t in tracks:
        assert t["judged"] and t["role"] == t["name"] and t["gated"] == (t["role"] != "drums")
        assert isinstance(t["longest_shared_run"], int) and isinstance(t["longest_shared_bars"], int)
        assert t["flagged"] == (t["gated"] and t["longest_shared_run"] > THRESHOLD)
        assert t["closest_piece"] in records | {None}
    gated = [t for t in tracks if t["gated"]]
    assert orig["longest_shared_run"] == max(t["longest_shared_run"] for t in gated)
    assert orig["flagged"] == any(t["flagged"] for t in tracks)
    # the index was cached under the data directory, named by the dataset's manifest hash
    cached = list((tmp_path / "data" / "originality").glob("song-originality-*.npz"))
    assert len(cached) == 1 and Dataset(corpus).manifest_sha256[:16] in cached[0].name


def test_the_cached_index_answers_as_the_built_one(corpus, record, tmp_path):
    built = track_index_for_dataset(corpus, cache_dir=tmp_path)
    (path,) = tmp_path.glob("song-originality-*.npz")
    loaded = track_index_for_dataset(corpus, cache_dir=tmp_path)
    assert loaded.tokens == built.tokens > 0
    song, by_role = record
    tracks = [(role, role, notes, None) for role, notes in by_role.items()]
    tracks.append(("fresh", "lead", _fresh_line(8, 1), None))
    assert check_song(loaded, tracks, song.score.bar_beats) == check_song(built, tracks, song.score.bar_beats)
    raw = dict(np.load(path))
    raw["version"] = np.array([99])
    np.savez(tmp_path / "old.npz", **raw)
    with pytest.raises(DatasetError, match="another version"):
        TrackIndex.load(tmp_path / "old.npz")


def test_a_chord_part_is_counted_in_onsets():
    """Chords and pad are measured a chord at a time: 12 block chords are 11 steps after the first (36 notes would
    be 35), the same progression in another key gives the same steps, another voicing or rhythm does not."""
    progression = [(60, 64, 67), (57, 60, 64), (53, 57, 60), (55, 59, 62)] * 3
    chords = [Note(p, 2.0 * i, 2.0, 80) for i, shape in enumerate(progression) for p in shape]
    assert len(onset_tokens(chords)) == 11 and len(note_tokens(chords)) == 35
    assert len(role_tokens("chords", chords)) == len(role_tokens("pad", chords)) == 11
    assert len(role_tokens("bass", chords)) == 35
    moved = [Note(n.pitch + 5, n.start, n.duration, n.velocity) for n in chords]
    assert np.array_equal(onset_tokens(moved), onset_tokens(chords))
    revoiced = [Note(n.pitch + (12 if n.pitch == min(shape) else 0), n.start, n.duration, n.velocity)
                for n, shape in zip(chords, [s for s in progression for _ in s], strict=True)]
    assert not np.array_equal(onset_tokens(revoiced), onset_tokens(chords))
    faster = [Note(n.pitch, n.start / 2, n.duration / 2, n.velocity) for n in chords]
    assert not np.array_equal(onset_tokens(faster), onset_tokens(chords))


# ------------------------------------------------------------------------------------------ a copied track


def test_a_track_copied_from_a_training_record_fails_the_gate(weights, record, tmp_path):
    entry = local_entry("song", weights / "song.json")
    gate = OriginalityGate(tmp_path / "cache", threshold=THRESHOLD, tries=2)
    song, by_role = record
    score = _copied_score(record)
    score.parts.append(Part("lead", _fresh_line(int(np.ceil(song.labels["bars"])), 2)))  # a fresh line, too
    report = gate.check_tracks(entry.id, entry.card, score, originality_tracks(_work(score)))
    assert report["status"] == "checked" and report["flagged"]
    copied = [t for t in report["tracks"][:-1] if t["gated"]
              and len(role_tokens(t["role"], grid_notes(by_role[t["role"]], drum=False))) > 2 * THRESHOLD]
    assert copied, "the record has a long pitched track"
    for t in copied:
        assert t["flagged"] and t["longest_shared_run"] > THRESHOLD and t["closest_piece"] == song.record.id, t
    fresh = report["tracks"][-1]
    assert fresh["judged"] and not fresh["flagged"] and fresh["longest_shared_run"] <= THRESHOLD
    drums = [t for t in report["tracks"] if t["role"] == "drums"]
    assert all(not t["gated"] and not t["flagged"] and t["longest_shared_bars"] >= 4 for t in drums)
    assert report["closest_piece"] == song.record.id
    assert originality_line(report).startswith("FLAGGED: longest runs shared with a training song, per track")

    # a request that rejects near-copies draws again (next seed) and is refused when every try is a copy
    check = _originality_check(entry, {"originality": "reject"}, gate, None, None)
    seeds = []

    def make(seed):
        seeds.append(seed)
        return _work(_copied_score(record))
    with pytest.raises(OriginalityRejected, match=song.record.id):
        draw({"originality": "reject", "seed": 5}, make, check, tries=2)
    assert seeds == [5, 6]


def _work(score: Score) -> Work:
    return Work(score=score, audio=None, sr=0, result={}, signed={}, title="copy")


def test_drums_alone_are_reported_not_gated(weights, record, tmp_path):
    entry = local_entry("song", weights / "song.json")
    gate = OriginalityGate(tmp_path / "cache", threshold=THRESHOLD, tries=1)
    song, by_role = record
    score = Score(parts=[Part("drums", by_role["drums"], is_drum=True)], time_signature=song.score.time_signature)
    report = gate.check_tracks(entry.id, entry.card, score, originality_tracks(_work(score)))
    (drums,) = report["tracks"]
    assert drums["judged"] and drums["longest_shared_run"] > THRESHOLD and drums["closest_piece"] == song.record.id
    assert not report["flagged"] and report["longest_shared_run"] is None and "drums" not in GATED_ROLES


# ------------------------------------------------------------------------------------------ a song made with an input


@pytest.fixture(scope="module")
def band(tmp_path_factory) -> Path:
    return midi_file(tmp_path_factory.mktemp("input") / "band.mid", band_midi_tracks())


def test_tracks_kept_from_the_input_are_not_judged(cli, band):
    code, report = cli("--input", str(band), "--regenerate", "drums")
    assert code == 0, report
    tracks = {t["name"]: t for t in report["originality"]["tracks"]}
    assert set(tracks) == {"Drums", "Bass", "Piano", "Flute"}
    for name in ("Bass", "Piano", "Flute"):
        assert not tracks[name]["judged"] and tracks[name]["reason"] == KEPT and not tracks[name]["flagged"]
        assert tracks[name]["longest_shared_run"] is None
    assert tracks["Drums"]["judged"] and tracks["Drums"]["role"] == "drums" and not tracks["Drums"]["gated"]
    code, report = cli("--input", str(band), "--style", "house")  # arrange: the melody is the user's
    assert code == 0, report
    tracks = {t["name"]: t for t in report["originality"]["tracks"]}
    assert not tracks["lead"]["judged"] and tracks["lead"]["reason"] == KEPT
    assert all(tracks[r]["judged"] for r in ("drums", "bass", "chords", "pad"))


def test_a_continued_song_is_judged_on_its_new_bars(weights, band):
    from tunesmith.compose.song import SongWriter
    from tunesmith.symbolic.io import read_score

    writer = SongWriter.load(weights / "song.json")
    song = writer.generate_from(read_score(band), mode="continue", bars=4, seed=1)
    result = {"tracks": song.tracks, "input_bars": song.params["input_bars"]}
    work = Work(score=song.score, audio=None, sr=0, result=result, signed={}, title="continued")
    after = song.params["input_bars"] * song.score.bar_beats
    judged = originality_tracks(work)
    assert [t["input"] for t in song.tracks][:4] == ["continued"] * 4
    assert all(skip is None for _, _, _, skip in judged)
    assert all(n.start >= after - 1e-9 for _, _, notes, _ in judged for n in notes)
    assert sum(len(notes) for _, _, notes, _ in judged) == sum(
        1 for p in song.score.parts for n in p.notes if n.start >= after - 1e-9) > 0


# ------------------------------------------------------------------------------------------ not checked


def test_a_dataset_that_is_not_here_leaves_the_song_unchecked(cli, tmp_path):
    code, report = cli("--style", "house", "--bars", "8", model="song-nodata")
    assert code == 0, report
    orig = report["originality"]
    assert orig["status"] == "unchecked" and not orig["flagged"] and orig["tracks"] is None
    assert "no-such-grooves" in orig["reason"] and "not on this machine" in orig["reason"]
    assert originality_line(orig).startswith("originality unchecked (the training data of model")


def test_the_seeded_search_finds_what_whole_tables_find():
    """The seed-and-extend search agrees with a length-by-length search over whole tables, for near-copies,
    random queries and queries that share no window of `BOUND_LENGTH` tokens (bar runs: first != rest)."""
    rng = np.random.default_rng(0)
    train = [(f"s{i}", rng.integers(0, 6, n), rng.integers(0, 4, n)) for i, n in enumerate(rng.integers(5, 200, 200))]
    index = RunIndex(train)

    def by_tables(first, rest):
        best = (0, None)
        for length in range(1, len(first) + 1):
            if (hit := index.shared(first, rest, length)) is None:
                break
            best = (length, hit)
        return best

    lengths = set()
    for t in range(150):
        n = int(rng.integers(1, 40))
        if t % 3 == 0:  # a training stretch with one token changed
            _, first, rest = train[int(rng.integers(len(train)))]
            at = int(rng.integers(0, max(1, len(first) - n)))
            first, rest = first[at:at + n].copy(), rest[at:at + n].copy()
            first[int(rng.integers(len(first)))] = rng.integers(0, 6)
        else:  # random, from the training alphabet or a wider one
            first, rest = rng.integers(0, 6 if t % 2 else 50, n), rng.integers(0, 4 if t % 2 else 50, n)
        found = index.longest(first, rest)
        assert found[0] == by_tables(first, rest)[0]
        assert found[1] is None or index.shared(first, rest, found[0]) is not None
        lengths.add(found[0])
    assert min(lengths) < BOUND_LENGTH < max(lengths)  # both paths were taken


def test_refused_tries_free_the_synthesizers_they_were_rendering_on(weights, record, tmp_path):
    """Each try of a song is rendered while it is written; the tries the gate refuses are cancelled, so the
    renderer is free for the next job (else it would wait for them forever)."""
    from tunesmith.compose.song import SongWriter
    from tunesmith.families import get
    from tunesmith.generation.pipeline import open_stem_stream

    entry = local_entry("song", weights / "song.json")
    writer = SongWriter.load(entry.card_path)
    gate = OriginalityGate(tmp_path / "cache", threshold=THRESHOLD, tries=2)
    check = _originality_check(entry, {"originality": "reject"}, gate, None, None)
    streams = []

    def make(seed):  # a song written and rendered meanwhile, whose score is then a training record's copy
        streams.append(open_stem_stream(get("song"), 16000))
        writer.generate(style="pop", bars=8, seed=seed, stream=streams[-1])
        assert streams[-1].started  # it holds a synthesizer per track
        return Work(score=_copied_score(record), audio=None, sr=0, result={}, signed={}, title="copy",
                    stream=streams[-1])
    with pytest.raises(OriginalityRejected):
        draw({"originality": "reject", "seed": 5}, make, check, tries=2)
    assert len(streams) == 2 and not any(s.started for s in streams)
    renderer = streams[0].renderer
    for held in (renderer, *renderer._helpers):
        assert held._lock.acquire(timeout=5), "a refused try still holds a synthesizer"
        held._lock.release()
