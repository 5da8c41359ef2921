"""The grooves corpus: style families, chord fitting, MMA's style library rendered over real progressions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tunesmith.data.arrange import ROLES, groove_kind, main_variant, reduce_rhythm, track_role
from tunesmith.data.corpora.grooves import build_grooves, iter_songs
from tunesmith.data.dataset import Dataset
from tunesmith.data.manifest import assign_split
from tunesmith.data.mma import meter_of, style_files
from tunesmith.data.progressions import folk_sources, load_mma_example, mma_example_paths
from tunesmith.data.styles import EXCLUDED_FILES, STYLE_FAMILIES, family, family_of_file, resolve_family, tempo_range
from tunesmith.errors import DependencyError, ParameterError
from tunesmith.symbolic.harmony import Chord, fit_chords, parse_chord, transpose_symbol
from tunesmith.symbolic.score import Note

LIMIT = 6


@pytest.fixture(scope="module")
def grooves(tmp_path_factory):
    out = tmp_path_factory.mktemp("grooves") / "grooves"
    summary = build_grooves(out, limit=LIMIT, workers=2)
    return summary, Dataset(out)


# ------------------------------------------------------------------------------------------ style families


def test_every_mma_style_file_has_exactly_one_family_or_a_reason():
    names = {s.name for s in style_files()}
    mapped = [f for fam in STYLE_FAMILIES for f in fam.files]
    assert len(mapped) == len(set(mapped)), "a style file is in two families"
    assert set(mapped) | set(EXCLUDED_FILES) == names
    assert not set(mapped) & set(EXCLUDED_FILES)
    assert all(reason for reason in EXCLUDED_FILES.values())
    assert len([f for f in STYLE_FAMILIES if f.files]) >= 24
    for fam in STYLE_FAMILIES:
        assert fam.id and fam.name and fam.description and fam.lead and fam.harmonic_rhythm in ("beat", "half", "bar")
        for name in fam.files:
            low, high = tempo_range(name)
            assert 30 <= low < high <= 320, name


def test_resolve_family_by_name_alias_and_nearest():
    assert resolve_family("Bossa Nova").id == "bossa_nova"
    assert resolve_family("hip-hop").id == "hip_hop"
    assert resolve_family("R&B").id == "rnb_soul"
    assert resolve_family("BIG BAND").id == "big_band"
    with pytest.raises(ParameterError, match="nearest: 'bossa_nova'") as info:
        resolve_family("bosa novva")
    assert "swing" in str(info.value) and info.value.field == "style"
    assert family_of_file("stdlib/metronome") is None
    assert family_of_file("stdlib/bossanova").id == "bossa_nova"


# ---------------------------------------------------------------------------------------- MMA conventions


def test_groove_names_map_to_sections():
    assert groove_kind("BossaNovaIntro8") == "intro"
    assert groove_kind("SwingEnd") == groove_kind("KBOSSAENDINGD") == groove_kind("16BEAT1E") == "outro"
    assert groove_kind("DescendingJazz") == "main"  # "END" inside a name is not an ending
    assert groove_kind("BigBandFill") == groove_kind("MamboBreakAA") == groove_kind("16Beat1FA") == "fill"
    assert main_variant("SwingWalkPlus", "SWING") == "plus"
    assert main_variant("SwingSus", "SWING") == "sus"
    assert main_variant("JazzBasieMainC", "JAZZBASIE") == "sus"
    assert main_variant("KBossaB", "KBOSSA") == "plus"
    assert main_variant("Swing1Walk", "SWING") == "plain"


def test_mma_meters_are_notated_in_quarter_beats():
    assert meter_of(768, (4, 4)) == ((4, 4), Fraction(1))
    assert meter_of(576, (4, 4)) == ((3, 4), Fraction(1))          # a waltz that never set its Timesig
    assert meter_of(1152, (6, 8)) == ((6, 8), Fraction(1, 2))      # MMA's 6/8: six eighth-note beats
    assert meter_of(384, (6, 8)) == ((6, 8), Fraction(3, 2))       # a 6/8 march in two
    assert meter_of(1152, (4, 4)) == ((6, 8), Fraction(1, 2))


def test_track_roles():
    assert track_role("Drum", 0, True, 40) == "drums"
    assert track_role("Walk", 32, False, 40) == "bass"
    assert track_role("Bass-7", 5, False, 64) == "chords"          # a Casio piano riff on a Bass track
    assert track_role("Bass-1", 0, False, 45) == "bass"            # a stride left hand
    assert track_role("Chord-Sus", 0, False, 60) == "pad"
    assert track_role("Chord-Strings", 48, False, 60) == "pad"
    assert track_role("Chord-Guitar", 26, False, 60) == "chords"
    assert track_role("Plectrum", 25, False, 60) == "chords"
    assert track_role("Arpeggio", 0, False, 70) == "lead"


# ---------------------------------------------------------------------------------------------- harmony


def test_chord_symbols_parse_and_transpose():
    assert parse_chord("F#m7b5") == Chord(6, "m7b5")
    assert parse_chord("Bb/D") == Chord(10, "", (), 2)
    assert parse_chord("Cm6").pitch_classes == frozenset({0, 3, 7, 9})
    assert parse_chord("Bm7&5").quality == "m7b5"                    # MMA's "&" flat
    assert transpose_symbol("C7#9", 2) == "D7#9"
    assert transpose_symbol("Ab/C", 1) == "A/C#"
    with pytest.raises(ParameterError):
        parse_chord("IV")


def test_chord_fit_finds_a_cadence_in_four_voices():
    voicings = [(48, 64, 67, 72), (53, 65, 69, 72), (55, 62, 67, 71), (43, 65, 67, 71), (48, 64, 67, 72)]
    notes = [Note(p, float(i), 1.0) for i, chord in enumerate(voicings) for p in chord]
    chords = fit_chords(notes, np.arange(5.0), np.arange(1.0, 6.0), "C major")
    assert [c.symbol() for c in chords][:2] == ["C", "F"] and chords[-1].symbol() == "C"
    assert chords[2].root == 7 and chords[3].symbol() == "G7"   # G then G7 (merged into G7 by the smoothing)


def test_mma_example_chart_is_read_as_mma_plays_it():
    paths = [p for p in mma_example_paths() if p.name == "deep-river.mma"]
    assert paths, "MMA's example songs are missing (Debian package mma)"
    prog = load_mma_example(paths[0])
    assert prog.meter == (4, 4) and prog.kind == "mma" and prog.bars >= 60
    assert [s for _, s in prog.chords[:4]] == ["F", "Dm", "Gm", "C7"]
    assert prog.chords[0][0] == 0.0 and prog.chords[1][0] == 4.0


def test_an_mma_example_with_random_chords_reads_the_same_every_time():
    paths = [p for p in mma_example_paths() if p.name == "rndchords.mma"]
    assert paths, "MMA's example songs are missing (Debian package mma)"
    charts = {tuple(load_mma_example(paths[0]).chords) for _ in range(3)}
    assert len(charts) == 1  # unseeded, MMA drew 13 new chords from C C C C F G7 on every run


def test_folk_tunes_get_a_melody_and_chords_on_its_bars():
    source = next(s for s in folk_sources() if s.id.startswith("oneill-"))
    progs = source.load()   # one per run of bars in one meter (this tune's ABC has a stray 1/16 bar)
    assert progs and all(p.meter == (2, 4) for p in progs)
    prog = progs[0]
    assert prog.melody and prog.harmony == "fit-melody" and prog.bars >= 8
    ends = [n.end for n in prog.melody]
    assert max(ends) <= prog.bars * prog.bar_beats + 1e-6
    assert all(parse_chord(s) for _, s in prog.chords)


def test_harmonic_rhythm_keeps_the_longest_chord_per_slot():
    chords = [(0.0, "C"), (1.0, "Dm"), (1.5, "G"), (2.0, "F"), (3.0, "G7")]
    assert reduce_rhythm(chords, 4.0, 4, "bar") == [(0.0, "C"), (4.0, "G7")]   # G7 sounds on into bar 2
    assert reduce_rhythm(chords, 4.0, 4, "half") == [(0.0, "C"), (2.0, "F"), (4.0, "G7")]
    assert reduce_rhythm(chords, 4.0, 4, "beat") == [(0.0, "C"), (1.0, "Dm"), (2.0, "F"), (3.0, "G7")]


# ------------------------------------------------------------------------------------------------ build


def test_small_build_has_labelled_multitrack_songs(grooves):
    summary, ds = grooves
    assert summary.items == len(ds) == LIMIT, summary.lines()
    families = [r.labels["family"] for r in ds.records]
    assert len(set(families)) == LIMIT                                 # one song per family first
    for record in ds.records:
        labels = record.labels
        fam = family(labels["family"])
        assert labels["style_file"] in fam.files
        low, high = tempo_range(labels["style_file"])
        assert low <= labels["tempo"] <= high
        assert labels["meter"] in ("4/4", "3/4", "6/8", "5/4")
        assert labels["key"].split()[1] in ("major", "minor")
        assert labels["grooves"] and all(isinstance(g, str) for g in labels["grooves"])
        assert "GPL-2+" in record.licence and record.licence == record.licence.strip()
        sections = labels["sections"]
        assert {s["section"] for s in sections} >= {"verse", "chorus"}
        assert set(labels["section_names"]) <= {"intro", "verse", "chorus", "bridge", "outro"}
        starts = [s["start_bar"] for s in sections]
        assert starts[0] == 0
        assert all(b - a == s["bars"] for a, b, s in zip(starts[:-1], starts[1:], sections[:-1], strict=True))
        assert sum(s["bars"] for s in sections) == labels["bars"]
        assert labels["chords"] and all(parse_chord(c) for _, c in labels["chords"])
        assert labels["progression"]["kind"] in ("folk", "chorale", "quartet", "mma")
        assert all(t["role"] in ROLES for t in labels["tracks"])
        assert all(t["role"] == "drums" for t in labels["tracks"] if t["drum"])


def test_split_follows_the_progression_source_piece(grooves):
    _, ds = grooves
    seen: dict[str, str] = {}
    for record in ds.records:
        group = record.labels["group"]
        assert record.split == assign_split(group)
        assert seen.setdefault(group, record.split) == record.split
    info = ds.info
    assert info["ticks_per_beat"] == 1920 and "GPL-2+" in info["licence_mma"]
    assert sum(info["licences"].values()) == len(ds)


def test_songs_read_back_as_scores_with_roles(grooves):
    _, ds = grooves
    songs = list(iter_songs(ds.root))
    assert len(songs) == len(ds)
    with_melody = 0
    for song in songs:
        labels = song.labels
        assert len(song.score.parts) == len(labels["tracks"]) == len(song.roles)
        assert song.score.time_signature == tuple(int(x) for x in labels["meter"].split("/"))
        end = labels["bars"] * labels["bar_beats"]
        for part, track in zip(song.score.parts, labels["tracks"], strict=True):
            assert len(part.notes) == track["notes"] > 0
            assert all(0 <= n.start < end + 1e-6 for n in part.notes), (song.record.id, part.name)
            if part.is_drum:
                assert all(27 <= n.pitch <= 87 for n in part.notes)
        assert any(p.is_drum for p in song.score.parts) or labels["family"] == "ragtime"
        assert "bass" in song.roles or "chords" in song.roles
        if labels["melody"]:
            with_melody += 1
            melody = next(p for p, t in zip(song.score.parts, labels["tracks"], strict=True) if t.get("melody"))
            intro = next((s for s in labels["sections"] if s["section"] == "intro"), None)
            first_verse_bar = next(s["start_bar"] for s in labels["sections"] if s["section"] == "verse")
            if intro is not None:   # the melody rests in the intro, but for a pickup into the verse
                assert min(n.start for n in melody.notes) >= first_verse_bar * labels["bar_beats"] - 2.0
    assert with_melody >= LIMIT // 2


def test_chorus_after_the_bridge_repeats_the_first(tmp_path):
    (tmp_path / "lib" / "stdlib").mkdir(parents=True)
    shutil.copy("/usr/share/mma/lib/stdlib/bossanova.mma", tmp_path / "lib" / "stdlib")
    summary = build_grooves(tmp_path / "g", limit=2, workers=1, library=tmp_path / "lib")
    ds = Dataset(tmp_path / "g")
    long_songs = [r for r in ds.records if "bridge" in r.labels["section_names"]]
    assert summary.items == 2 and long_songs, [r.labels["section_names"] for r in ds.records]
    record = long_songs[0]
    notes = ds.array("notes", record)
    bar = round(record.labels["bar_beats"] * 1920)
    choruses = [s for s in record.labels["sections"] if s["section"] == "chorus"]
    assert len(choruses) == 2 and choruses[0]["groove"] == choruses[1]["groove"]
    melody_index = next((i for i, t in enumerate(record.labels["tracks"]) if t.get("melody")), None)
    if melody_index is not None:
        def chorus_melody(section):
            a, b = section["start_bar"] * bar, (section["start_bar"] + section["bars"]) * bar
            rows = notes[(notes[:, 0] == melody_index) & (notes[:, 1] >= a) & (notes[:, 1] < b)]
            return [(int(s) - a, int(p)) for s, p in rows[:, [1, 3]]]
        assert chorus_melody(choruses[0]) == chorus_melody(choruses[1])


def test_a_corrupt_style_file_is_reported_and_skipped(tmp_path):
    library = tmp_path / "lib"
    (library / "stdlib").mkdir(parents=True)
    for name in ("bossanova", "waltz"):
        shutil.copy(f"/usr/share/mma/lib/stdlib/{name}.mma", library / "stdlib")
    (library / "stdlib" / "tango.mma").write_bytes(b"Begin Drum\n  Sequence {{{ \x00\xff garbage\nDefGroove Tango x\n")
    (library / "stdlib" / "mystyle.mma").write_text("// a user's own style, in no family\n")
    summary = build_grooves(tmp_path / "g", limit=3, workers=1, library=library)
    skipped = {Path(s.source).name: s.reason for s in summary.skipped}
    assert skipped.get("tango.mma")
    assert "no style family" in skipped["mystyle.mma"]
    ds = Dataset(tmp_path / "g")
    assert {r.labels["style_file"] for r in ds.records} == {"stdlib/bossanova", "stdlib/waltz"}
    assert len(ds) == summary.items >= 2
    assert ds.info["summary"]["skipped"]


def test_missing_mma_is_a_dependency_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))   # no mma on the PATH
    with pytest.raises(DependencyError, match="'mma'"):
        build_grooves(tmp_path / "g", limit=1)
    env = {**os.environ, "PATH": str(tmp_path), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "tunesmith", "data", "build", "grooves", "--out",
                           str(tmp_path / "g"), "--limit", "1"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "mma" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "g").exists()


def test_songs_per_family_from_the_cli_is_checked(tmp_path, capsys):
    """`--songs-per-family` reaches the builder; a count below one is exit 2 with one line naming the field, and
    nothing is written."""
    from tunesmith.cli import main

    assert main(["data", "build", "grooves", "--out", str(tmp_path / "g"), "--songs-per-family", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "songs_per_family" in err[0]
    assert not (tmp_path / "g").exists()
    assert main(["data", "build", "notes", "--out", str(tmp_path / "n"), "--songs-per-family", "8"]) == 2
    assert "does not apply to 'notes'" in capsys.readouterr().err
