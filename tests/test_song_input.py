"""The song model's input modes on the tiny song model (tests/tiny.py): a melody arranged (kept note for note in the
lead), a song continued (its bars kept), one track regenerated (the others kept), a song restyled (its chord roots
and melody kept), through the CLI and the API; and bad input: a 4xx naming the field over HTTP, exit 2 with one
line in the CLI, no output file.

The input files are written with mido here, not with tunesmith's own writer, so a reader bug cannot hide itself.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import mido
import pytest

from tests.service_fixtures import client_and_keys, error_of, served
from tests.test_service_support import wait_until_finished
from tests.tiny import tiny_song, tiny_weights
from tunesmith.cli import main
from tunesmith.compose.song_input import band_roles
from tunesmith.config import Settings
from tunesmith.symbolic.harmony import parse_chord
from tunesmith.symbolic.io import read_score

TPB = 480
BAR = 4  # beats of a 4/4 bar
# (pitch, start beat, beats, velocity): four bars of a tune in C, with a syncopation and a triplet
MELODY = [(64, 0, 1, 90), (67, 1, 0.5, 80), (69, 1.5, 1.5, 85), (67, 3, 1, 70), (65, 4, 2, 90), (64, 6, 2, 75),
          (62, 8, 1, 90), (64, 9, 1 / 3, 70), (65, 9 + 1 / 3, 1 / 3, 72), (67, 9 + 2 / 3, 1 / 3, 74), (69, 10, 2, 88),
          (67, 12, 1.5, 90), (65, 13.5, 0.5, 60), (64, 14, 2, 80)]
CHORDS = [(48, 52, 55), (53, 57, 60), (55, 59, 62), (57, 60, 64)]  # C, F, G, Am: one a bar


def midi_file(path: Path, tracks: list[dict], *, tempo: float = 100.0) -> Path:
    """A type-1 MIDI file: each track a dict of name, program, channel and notes (pitch, start, beats, velocity)."""
    mid = mido.MidiFile(type=1, ticks_per_beat=TPB)
    mid.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo), time=0),
                                      mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0)]))
    for track in tracks:
        channel = track.get("channel", 0)
        messages = [mido.MetaMessage("track_name", name=track["name"], time=0),
                    mido.Message("program_change", program=track.get("program", 0), channel=channel, time=0)]
        events = sorted([(round((s + d) * TPB), 0, p, 0) for p, s, d, _ in track["notes"]]
                        + [(round(s * TPB), 1, p, v) for p, s, _, v in track["notes"]])
        now = 0
        for tick, on, pitch, velocity in events:
            messages.append(mido.Message("note_on" if on else "note_off", note=pitch, velocity=velocity,
                                         channel=channel, time=tick - now))
            now = tick
        mid.tracks.append(mido.MidiTrack(messages))
    mid.save(path)
    return path


def band_tracks() -> list[dict]:
    """Four bars of a band: drums (channel 10), a bass, a piano playing C F G Am, a flute playing the tune."""
    drums = [(36 if i % 4 == 0 else 42, i * 0.5, 0.25, 100) for i in range(32)]
    bass = [(chord[0] - 12, bar * BAR + beat, 1, 90) for bar, chord in enumerate(CHORDS) for beat in (0, 2)]
    piano = [(p, bar * BAR + beat, 2, 70) for bar, chord in enumerate(CHORDS) for beat in (0, 2) for p in chord]
    return [{"name": "Drums", "channel": 9, "notes": drums}, {"name": "Bass", "program": 33, "notes": bass},
            {"name": "Piano", "program": 0, "channel": 1, "notes": piano},
            {"name": "Flute", "program": 73, "channel": 2, "notes": MELODY}]


def notes_of(path_or_bytes: Path | bytes, name: str) -> list[tuple[int, float, float, int]]:
    """(pitch, start beat, beats, velocity) of the MIDI track called ``name``, read with mido."""
    mid = mido.MidiFile(file=io.BytesIO(path_or_bytes)) if isinstance(path_or_bytes, bytes) else \
        mido.MidiFile(path_or_bytes)
    for track in mid.tracks:
        if track.name != name:
            continue
        now, open_, notes = 0, {}, []
        for msg in track:
            now += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                open_[msg.note] = (now, msg.velocity)
            elif msg.type in ("note_on", "note_off") and msg.note in open_:
                start, velocity = open_.pop(msg.note)
                notes.append((msg.note, round(start / mid.ticks_per_beat, 4),
                              round((now - start) / mid.ticks_per_beat, 4), velocity))
        return sorted(notes, key=lambda n: (n[1], n[0]))
    raise AssertionError(f"no track {name!r} in {[t.name for t in mid.tracks]}")


def rounded(notes) -> list[tuple[int, float, float, int]]:
    return sorted(((p, round(s, 4), round(d, 4), v) for p, s, d, v in notes), key=lambda n: (n[1], n[0]))


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    directory = tiny_weights(tmp_path_factory.mktemp("weights"))
    tiny_song(directory)
    return directory


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inputs")
    many = [(60 + i % 24, i * 0.125, 0.125, 80) for i in range(10_000)]
    return {"melody": midi_file(root / "melody.mid", [{"name": "Tune", "notes": MELODY}]),
            "band": midi_file(root / "band.mid", band_tracks()),
            "empty": midi_file(root / "empty.mid", [{"name": "Tune", "notes": []}]),
            "huge": midi_file(root / "huge.mid", [{"name": "Tune", "notes": many}])}


@pytest.fixture
def cli(weights, tmp_path, monkeypatch, capsys):
    """`tunesmith generate song ... --json` on the tiny model: (exit code, the JSON report or the error line)."""
    monkeypatch.setenv("TUNESMITH_DATA_DIR", str(tmp_path / "data"))

    def run(*args: str) -> tuple[int, dict | str]:
        code = main(["generate", "song", "--checkpoint", str(weights / "song.json"), "--seed", "3", "--json", *args])
        out, err = capsys.readouterr()
        return code, (json.loads(out) if code == 0 else err)
    return run


# ------------------------------------------------------------------------------------------------ roles


def test_tracks_map_to_roles_by_channel_program_and_name(files, tmp_path):
    assert band_roles(read_score(files["band"])) == ["drums", "bass", "chords", "lead"]
    unnamed = [{"name": f"Track {i}", "program": program, "channel": i, "notes": notes} for i, (program, notes) in
               enumerate([(0, [(p, 4.0 * b, 4, 70) for b in range(2) for p in (60, 64, 67)]),
                          (0, [(40, 2.0 * b, 2, 80) for b in range(4)]),  # low and one note at a time: a bass
                          (0, [(76 + b % 3, 1.0 * b, 1, 80) for b in range(8)]),  # high and one line: the lead
                          (89, [(60, 0, 8, 60)])])]  # a synth pad program
    roles = band_roles(read_score(midi_file(tmp_path / "unnamed.mid", unnamed)))
    assert roles == ["chords", "bass", "lead", "pad"]


# ------------------------------------------------------------------------------------------------ modes


def test_arrange_keeps_the_melody_note_for_note(cli, files, tmp_path):
    out = tmp_path / "arranged.wav"
    code, report = cli("--input", str(files["melody"]), "--style", "pop ballad", "-o", str(out),
                       "--midi", str(tmp_path / "arranged.mid"))
    assert code == 0, report
    assert report["mode"] == "arrange" and report["bars"] == 4 and report["style"] == "pop ballad"
    assert out.stat().st_size > 1000
    assert notes_of(tmp_path / "arranged.mid", "lead") == rounded(MELODY)
    tracks = {t["name"]: t for t in report["tracks"]}
    assert set(tracks) == {"drums", "bass", "chords", "pad", "lead"} and tracks["lead"]["notes"] == len(MELODY)
    assert sum(t["notes"] for name, t in tracks.items() if name != "lead") > 0  # a band plays around it
    bars = {c["bar"] for c in report["chords"]}
    assert bars == {1, 2, 3, 4} or min(bars) == 1  # a chord from the first bar on, changing at most per half bar
    assert all(c["beat"] in (1.0, 3.0) for c in report["chords"])
    assert report["copied_steps"] >= len(MELODY)


def test_regenerate_keeps_the_other_tracks(cli, files, tmp_path):
    out = tmp_path / "new-drums.mid"
    code, report = cli("--input", str(files["band"]), "--regenerate", "drums", "-o", str(out))
    assert code == 0, report
    assert report["mode"] == "regenerate" and report["track"] == "drums"
    for track in ("Bass", "Piano", "Flute"):
        assert notes_of(out, track) == notes_of(files["band"], track), track
    new, old = notes_of(out, "Drums"), notes_of(files["band"], "Drums")
    assert new and new != old and all(n[1] < 4 * BAR for n in new)
    assert [t["name"] for t in report["tracks"]] == ["Drums", "Bass", "Piano", "Flute"]


def test_continue_keeps_the_given_bars(cli, files, tmp_path):
    out = tmp_path / "longer.mid"
    code, report = cli("--input", str(files["band"]), "--continue", "--length", "9.6", "-o", str(out))  # 4 bars at 100
    assert code == 0, report
    assert report["mode"] == "continue" and report["bars"] == 8 and report["input_bars"] == 4
    assert any("the style the input sounds like" in note for note in report["notes"])  # none asked: the input's
    assert report["params"]["style"] == report["style"]
    sections = report["sections"]  # the input is one section, the plan's sections follow it
    assert sections[0]["name"] == "input" and sections[0]["bars"] == [1, 4]
    assert [s["bars"][0] for s in sections[1:]] == [s["bars"][1] + 1 for s in sections[:-1]]
    assert sections[-1]["bars"][1] == 8 and "input" not in {s["name"] for s in sections[1:]}
    added = 0
    for track in ("Drums", "Bass", "Piano", "Flute"):
        given, now = notes_of(files["band"], track), notes_of(out, track)
        assert [n for n in now if n[1] < 4 * BAR] == given, track
        assert all(n[1] < 8 * BAR for n in now)
        added += len(now) - len(given)
    assert added > 0  # the model went on


def test_restyle_keeps_the_chord_roots_and_the_melody(cli, files, tmp_path):
    out = tmp_path / "house.mid"
    code, report = cli("--input", str(files["band"]), "--restyle", "house", "-o", str(out))
    assert code == 0, report
    assert report["mode"] == "restyle" and report["style"] == "house" and report["styles"] == {"house": 1.0}
    assert notes_of(out, "lead") == rounded(MELODY)
    per_bar = {}
    for change in report["chords"]:
        per_bar.setdefault(change["bar"], parse_chord(change["chord"]).root)
    assert per_bar == {1: 0, 2: 5, 3: 7, 4: 9}  # C F G Am, as the piano and the bass play them
    assert [t["name"] for t in report["tracks"]] == ["drums", "bass", "chords", "pad", "lead"]
    assert notes_of(out, "bass") != notes_of(files["band"], "Bass")  # the band is new


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(("name", "args", "words"), [
    ("empty", ["--style", "pop"], ["no notes"]),
    ("huge", [], ["10000 notes", "5000"]),
    ("band", ["--regenerate", "vocals"], ["no track 'vocals'", "drums"]),
    ("melody", ["--regenerate", "drums"], ["no drums track", "lead"]),
    (None, ["--continue"], ["--continue needs --input"]),
    ("band", ["--continue", "--regenerate", "bass"], ["cannot be used together"]),
    ("band", ["--regenerate", "bass", "--bars", "16"], ["keeps the length"]),
])
def test_bad_input_in_the_cli_is_one_line_and_no_file(cli, files, tmp_path, name, args, words):
    out = tmp_path / "out.wav"
    code, error = cli(*(["--input", str(files[name])] if name else []), *args, "-o", str(out),
                      "--stems", str(tmp_path / "stems"))
    assert code == 2
    assert error.count("\n") == 1 and all(w in error for w in words), error
    assert not out.exists() and not (tmp_path / "stems").exists()


# ------------------------------------------------------------------------------------------------ the API


@pytest.fixture(scope="module")
def server(tmp_path_factory, weights):
    settings = Settings(data_dir=tmp_path_factory.mktemp("song-input"), weights_dir=weights, workers=1,
                        poll_seconds=0.1, requests_per_minute=10_000)
    yield from served(settings)


client_fixture, alice_fixture, bob_fixture = client_and_keys()


def upload(client, headers, path: Path) -> dict:
    response = client.post("/v1/uploads", files={"file": (path.name, path.read_bytes(), "audio/midi")},
                           headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_the_params_are_in_the_schema(client):
    song = next(m for m in client.get("/v1/models").json()["models"] if m["id"] == "song")
    params = song["parameters"] if "parameters" in song else song["params"]
    assert params["mode"]["enum"] == ["arrange", "continue", "regenerate", "restyle"]
    assert params["track"]["enum"] == ["drums", "bass", "chords", "pad", "lead"] and "input" in params


def test_a_melody_arranged_through_the_api(client, alice, files):
    uploaded = upload(client, alice, files["melody"])
    body = {"model": "song", "params": {"input": uploaded["id"], "style": "pop ballad"}, "seed": 4}
    created = client.post("/v1/generations", json=body, headers=alice)
    assert created.status_code == 202, created.text
    job = wait_until_finished(client, created.json()["id"], alice, timeout=120)
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["mode"] == "arrange" and job["result"]["input"] == uploaded["id"]
    assert notes_of(client.get(job["links"]["midi"], headers=alice).content, "lead") == rounded(MELODY)


@pytest.mark.parametrize(("file", "params", "field", "words"), [
    ("band", {"mode": "regenerate", "track": "pad"}, "params.track", ["no pad track", "drums, bass, chords, lead"]),
    ("band", {"track": "vocals"}, "params.track", ["drums"]),
    ("band", {"mode": "regenerate"}, "params.track", ["needs track"]),
    ("band", {"mode": "restyle"}, "params.style", ["needs style"]),
    ("huge", {}, "params.input", ["10000 notes", "5000"]),
    ("band", {"loop": 4}, "params.loop", ["without an input"]),
    (None, {"mode": "continue"}, "params.input", ["upload"]),
])
def test_bad_input_over_http_names_the_field(client, alice, files, file, params, field, words):
    if file is not None:
        params = {"input": upload(client, alice, files[file])["id"], **params}
    response = client.post("/v1/generations", json={"model": "song", "params": params}, headers=alice)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["field"] == field and all(w in error["message"] for w in words), error


def test_a_melody_without_notes_is_refused_at_upload(client, alice, files):
    response = client.post("/v1/uploads", files={"file": ("empty.mid", files["empty"].read_bytes())}, headers=alice)
    assert response.status_code == 400 and error_of(response)["field"] == "file"


def test_an_audio_take_is_arranged_as_the_analyzer_hears_it(cli, files, tmp_path):
    from tunesmith.analyze.take import melody_of_take
    from tunesmith.audio.io import save
    from tunesmith.symbolic.render import get_renderer

    take = tmp_path / "take.wav"
    save(take, get_renderer(22050).render(read_score(files["melody"])), 22050, format="wav")  # the tune, played
    heard = melody_of_take(take).parts[0].notes
    pitches = [p for p, *_ in MELODY]
    assert len(heard) >= 0.7 * len(MELODY) and sum(n.pitch in pitches for n in heard) >= 0.9 * len(heard)
    code, report = cli("--input", str(take), "--style", "bossa nova", "-o", str(tmp_path / "take.mid"))
    assert code == 0, report
    assert report["mode"] == "arrange" and report["key"].endswith(("major", "minor"))
    lead = notes_of(tmp_path / "take.mid", "lead")
    assert [(p, s) for p, s, _, _ in lead] == [(n.pitch, round(n.start, 4)) for n in heard]


@pytest.mark.parametrize("style", ["bossa nova", "house", "waltz"])
def test_a_song_goes_on_in_its_own_style_when_none_is_asked(style):
    """Continued or given a new part without a style, a song keeps the style it sounds like to the model, not a
    default: songs of the shipped model in three styles are read back as those styles."""
    from tunesmith.compose.song import SongWriter
    from tunesmith.data.styles import resolve_family

    writer = SongWriter.load("song")  # the shipped weights
    song = writer.generate(style=style, bars=16, seed=3)
    longer = writer.generate_from(song.score, mode="continue", style=None, bars=4, seed=1)
    assert longer.params["style"] == resolve_family(style).id
    drums = writer.generate_from(song.score, mode="regenerate", track="drums", style=None, seed=1)
    assert drums.params["style"] == resolve_family(style).id


def test_a_chord_held_past_the_change_does_not_hide_the_next_one():
    """A band's comping rings on: Dm ringing on under E7 on beat 3 is read Dm then E7 (held notes counted fully,
    the Dm swallowed the E7), and a clean change is read as before."""
    from tunesmith.compose.song_input import estimate_chords
    from tunesmith.symbolic.harmony import QUARTET, fit_chords
    from tunesmith.symbolic.score import Note

    dm = [(62, 0.0, 1.5), (65, 0.0, 1.5), (69, 0.0, 1.5), (62, 1.0, 2.5), (65, 1.0, 1.42), (69, 1.0, 1.42),
          (62, 1.42, 1.0), (65, 1.42, 1.58), (69, 1.42, 1.58), (62, 1.5, 2.0), (65, 1.5, 2.0), (69, 1.5, 2.0)]
    e7 = [(71, 2.0, 1.83), (62, 2.0, 1.0), (64, 2.0, 1.0), (68, 2.0, 1.0), (71, 2.5, 1.0), (62, 2.5, 1.0),
          (64, 2.5, 1.0), (68, 2.5, 0.5), (64, 3.08, 0.9)]  # a bar of the shipped model's bossa nova comping
    held = [Note(p, start, length, 80) for p, start, length in dm + e7]
    read = estimate_chords(held, bars=1, meter=(4, 4), key="A minor", melody=False)
    assert [(beat, chord.root, chord.quality) for beat, chord in read] == [(0.0, 2, "m"), (2.0, 4, "7")]
    import numpy as np

    starts = np.array([0.0, 2.0])
    before = fit_chords(held, starts, starts + 2, "A minor", QUARTET)  # held notes counted fully
    assert [(c.root, c.quality) for c in before] != [(2, "m"), (4, "7")]
    clean = [Note(p, 0.0, 2.0, 80) for p in (57, 60, 64)] + [Note(p, 2.0, 2.0, 80) for p in (62, 65, 69)]
    assert [(c.root, c.quality) for _, c in estimate_chords(clean, bars=1, meter=(4, 4), key="A minor",
                                                              melody=False)] == [(9, "m"), (2, "m")]


def test_every_general_midi_program_has_a_name():
    """An input track's program the project has no instrument for is named by General MIDI, not "program 5"."""
    from tunesmith.compose.song import instrument_name

    assert instrument_name(5, drum=False) == "electric_piano_2"
    assert instrument_name(51, drum=False) == "synth_strings_2"
    assert not any(instrument_name(p, drum=False).startswith("program") for p in range(128))
