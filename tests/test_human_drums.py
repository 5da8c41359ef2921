"""The human-drums evaluation set: Hydrogen's demo songs and LMMS's demo projects as GM drum patterns."""

from __future__ import annotations

import zlib

import pytest

from tunesmith.data.corpora import human_drums
from tunesmith.data.corpora.human_drums import (
    build_human_drums,
    drum_note_for_name,
    iter_drum_patterns,
    licence_for,
    read_dep5,
    read_hydrogen_song,
    read_lmms_project,
)
from tunesmith.data.dataset import Dataset
from tunesmith.errors import DatasetError, DependencyError


@pytest.fixture(scope="module")
def drums(tmp_path_factory):
    out = tmp_path_factory.mktemp("drums") / "human-drums"
    return build_human_drums(out), Dataset(out)


def test_sample_and_track_names_map_to_gm_drums():
    assert drum_note_for_name("drums/bassdrum_acoustic01.ogg") == 36
    assert drum_note_for_name("drums/hihat_closed05.ogg") == 42
    assert drum_note_for_name("drums/hihat_opened02.ogg") == 46
    assert drum_note_for_name("drumsynth/tr808/Hat_o.ds") == 46
    assert drum_note_for_name("drums/snare_rim01.ogg") == 37
    assert drum_note_for_name("drums/snare06.ogg") == 38
    assert drum_note_for_name("drumsynth/tr606/TR606_Tom_L.ds") == 45
    assert drum_note_for_name("Closed HihHat 03") == 42
    assert drum_note_for_name("instruments/piano01.ogg") is None


def test_hydrogen_instruments_map_through_the_drum_kit():
    path = human_drums.HYDROGEN_DATA / "demo_songs" / "GM_kit_Diddley.h2song"
    patterns = read_hydrogen_song(path)
    assert len(patterns) == 7 and all(p.meter == (4, 4) for p in patterns)
    notes = {gm for p in patterns for _, gm, _ in p.hits}
    # The song's own midiOutNote for "Ride" is 48 (a tom); the kit's drumkit.xml says 51.
    assert {36, 42} <= notes and 48 not in notes
    assert all(1 <= v <= 127 for p in patterns for _, _, v in p.hits)


def test_lmms_beat_bassline_patterns_are_read():
    path = human_drums.LMMS_PROJECTS / "demos" / "CapDan" / "CapDan-ReggaeTry.mmpz"
    patterns = read_lmms_project(path)
    assert patterns and all(p.meter == (4, 4) and p.tempo == 180 for p in patterns)
    first = next(p for p in patterns if p.name == "Beat+Bassline 1")
    assert first.bars == 2 and {36, 38, 42, 46} <= {gm for _, gm, _ in first.hits}


def test_licences_come_from_the_debian_copyright_files():
    stanzas = read_dep5(human_drums.LMMS_COPYRIGHT)
    assert licence_for(stanzas, "data/projects/demos/Saber-FinalStep.mmpz") == "BSD-2-clause"
    assert licence_for(stanzas, "data/projects/demos/Skiessi/Skiessi-C64.mmpz") == "CC-BY-SA-4"
    assert licence_for(stanzas, "data/projects/shorties/DirtyLove.mmpz") == "GPL-2+"
    assert licence_for(read_dep5(human_drums.HYDROGEN_COPYRIGHT), "data/demo_songs/GM_kit_Jazzy.h2song") == "GPL-2+"


def test_build_reads_every_demo_as_held_out_drum_patterns(drums):
    summary, ds = drums
    assert summary.items == len(ds) >= 150
    tools = {r.labels["tool"] for r in ds.records}
    assert tools == {"hydrogen", "lmms"}
    assert len({r.labels["project"] for r in ds.records if r.labels["tool"] == "lmms"}) >= 20
    assert {r.split for r in ds.records} == {"test"}
    licences = {r.licence.split(" (")[0] for r in ds.records}
    assert {"GPL-2+", "Artistic-2", "BSD-2-clause", "CC-BY-SA-3", "CC-BY-SA-4"} <= licences
    for record in ds.records:
        assert record.labels["tempo"] > 0 and record.labels["meter"] and record.labels["bars"] >= 1
        assert record.labels["roles"] == ["drums"]
    for song in iter_drum_patterns(ds.root):
        (part,) = song.score.parts
        assert part.is_drum and part.notes and all(27 <= n.pitch <= 87 for n in part.notes)
        end = song.labels["bars"] * song.labels["bar_beats"]
        assert all(0 <= n.start < end + 1e-6 for n in part.notes), song.record.id
    # a project with no nameable drum sounds is listed, not dropped silently
    assert any("Oglsdl-Dr8v2" in s.source for s in summary.skipped)


def test_corrupt_projects_are_reported_and_skipped(tmp_path):
    bad_lmms = tmp_path / "broken.mmpz"
    bad_lmms.write_bytes(b"\x00\x00\x01\x00" + zlib.compress(b"<lmms-project><song><trackcontainer>")[:-4])
    bad_hydrogen = tmp_path / "broken.h2song"
    bad_hydrogen.write_text("<song><bpm>120</bpm>")
    good = human_drums.HYDROGEN_DATA / "demo_songs" / "GM_kit_Jazzy.h2song"
    summary = build_human_drums(tmp_path / "d", hydrogen_songs=[good, bad_hydrogen], lmms_projects=[bad_lmms])
    skipped = {s.source: s.reason for s in summary.skipped}
    assert set(skipped) == {str(bad_lmms), str(bad_hydrogen)}
    assert "LMMS" in skipped[str(bad_lmms)] and "Hydrogen" in skipped[str(bad_hydrogen)]
    assert summary.items == len(Dataset(tmp_path / "d")) >= 1
    with pytest.raises(DatasetError):
        read_lmms_project(bad_lmms)


def test_missing_packages_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(human_drums, "LMMS_PROJECTS", tmp_path / "no-lmms")
    with pytest.raises(DependencyError, match="lmms-common") as info:
        build_human_drums(tmp_path / "d")
    assert "hydrogen-data" not in str(info.value)
    monkeypatch.setattr(human_drums, "HYDROGEN_DATA", tmp_path / "no-hydrogen")
    with pytest.raises(DependencyError, match="hydrogen-data, lmms-common"):
        build_human_drums(tmp_path / "d")
    assert not (tmp_path / "d").exists()
