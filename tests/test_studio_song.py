"""The studio's Song panel end to end: a real server on 127.0.0.1 (uvicorn, SQLite, embedded worker) offering the
tiny song model of tests/tiny.py, and a real headless Chromium (the Debian package, driven by Playwright).

A musician picks a style (or blends two), the band's tracks and instruments, the energy, key, tempo and length;
the song plays in the page with a mute/solo per track, its sections on a timeline and a piano roll per track
drawn from its MIDI file; the mix, the stems (zip) and the MIDI download. Each browser test prints where its
screenshot is."""

from __future__ import annotations

import io
import re
import wave
import zipfile

import mido
import numpy as np
import pytest
import soundfile as sf

from tests.service_fixtures import live_server
from tests.test_service_studio import browser, secret_of  # noqa: F401 (the module's browser fixture)
from tests.test_service_support import make_key
from tests.test_service_uploads import MELODY, midi_bytes
from tests.tiny import tiny_song, tiny_weights
from tunesmith.data.styles import STYLE_FAMILIES

GENERATE_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def song_server(tmp_path_factory):
    """A Tunesmith with the tiny models (a song model among them) and one embedded worker."""
    from tunesmith.config import Settings

    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    weights = tiny_weights(tmp_path_factory.mktemp("weights"))
    tiny_song(weights)
    settings = Settings(data_dir=tmp_path_factory.mktemp("song-server"), weights_dir=weights, workers=1,
                        poll_seconds=0.1, preload=["song"], requests_per_minute=10_000)
    with live_server(settings) as server:
        yield server, settings


@pytest.fixture
def page(browser):  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    page.problems = []
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    page.on("console", lambda message: page.problems.append(message.text) if message.type == "error" else None)
    yield page
    page.close()


def open_song_panel(page, server, settings, name: str) -> dict:
    """The studio with a new key and the song model chosen; returns the song model's card from GET /v1/models."""
    page.goto(f"{server.url}/")
    page.wait_for_selector('#model option[value="song"]', state="attached")
    page.fill("#api-key", secret_of(make_key(settings, name)))
    page.click("#key-save")
    page.wait_for_function("document.querySelector('#key-status').textContent.includes('saved')")
    page.select_option("#model", "song")
    page.wait_for_selector("#style-list .style-option")
    return page.evaluate("state.models.find(m => m.id === 'song')")


def test_the_studio_scripts_are_served(song_server):
    import httpx2 as httpx

    server, _ = song_server
    page = httpx.get(f"{server.url}/").text
    scripts = re.findall(r'<script src="/studio/([\w.-]+)"', page)
    assert {"midi.js", "track-rolls.js", "song-panel.js", "take.js", "studio.js"} <= set(scripts), scripts
    assert scripts[-1] == "studio.js"  # it starts the page once the modules are read (deferred, in order)
    for name in scripts:
        response = httpx.get(f"{server.url}/studio/{name}")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/javascript")
        assert "://" not in response.text  # nothing from a CDN


def test_models_list_the_song_styles_and_tracks(song_server):
    import httpx2 as httpx

    server, _ = song_server
    card = next(m for m in httpx.get(f"{server.url}/v1/models").json()["models"] if m["id"] == "song")
    assert [s["id"] for s in card["styles"]] == [f.id for f in STYLE_FAMILIES]
    by_id = {f.id: f for f in STYLE_FAMILIES}
    for style in card["styles"]:
        family = by_id[style["id"]]
        assert (style["name"], style["description"], tuple(style["tempo"])) == (family.name, family.description,
                                                                                 family.tempo)
        assert style["meter"] in card["params"]["meter"]["enum"]
    assert [t["name"] for t in card["tracks"]] == card["params"]["tracks"]["default"]
    drums, *pitched = card["tracks"]
    assert "drums_jazz" in drums["instruments"] and "flute" not in drums["instruments"]
    assert all("flute" in t["instruments"] and "drums_jazz" not in t["instruments"] for t in pitched)


def test_the_panel_offers_styles_blends_and_the_band(song_server, page):
    server, settings = song_server
    card = open_song_panel(page, server, settings, "song-panel")
    options = page.locator("#style-list .style-option")
    assert options.count() == len(card["styles"]) + 1  # and "Auto"
    bossa = page.locator('#style-list .style-option[data-style="bossa_nova"]')
    assert "Bossa nova" in bossa.text_content() and card["styles"][[s["id"] for s in card["styles"]].index(
        "bossa_nova")]["description"] in bossa.text_content()
    shown = "o => o.map(x => x.dataset.style)"
    page.fill("#style-filter", "brazil")  # words of the descriptions
    assert page.eval_on_selector_all("#style-list .style-option:not([hidden])", shown) == ["", "bossa_nova", "samba"]
    page.fill("#style-filter", "lo-fi")  # and of the other names a style goes by
    assert page.eval_on_selector_all("#style-list .style-option:not([hidden])", shown) == ["", "hip_hop"]
    page.fill("#style-filter", "")
    assert page.is_disabled("#blend-on")  # nothing to blend with "Auto"
    bossa.click()
    assert page.get_attribute("#param-tempo", "placeholder").startswith("auto: ")
    page.check("#blend-on")
    page.select_option("#blend-style", "house")
    page.fill("#blend-amount", "30")
    assert page.text_content("#blend-readout") == "70% Bossa nova + 30% House"
    for track in card["tracks"]:  # a checkbox and an instrument choice per track
        row = page.locator(f'#band-tracks .band-track[data-track="{track["name"]}"]')
        assert row.locator(".track-on").is_checked()
        assert row.locator(".track-instrument option").count() == len(track["instruments"]) + 1
    for row in page.locator("#band-tracks .track-on").all():
        row.uncheck()
    page.click("#generate")
    assert "at least one track" in page.text_content('[data-error-for~="params.tracks"]')
    assert page.locator("#param-bars").is_hidden()  # rarer parameters under "More options"
    page.click("#params-more-box summary")
    assert page.locator("#param-bars").is_visible()
    assert page.problems == []


def test_generate_a_song_see_its_tracks_mute_one_and_download(song_server, page, tmp_path):
    server, settings = song_server
    open_song_panel(page, server, settings, "song")
    page.click('#style-list .style-option[data-style="bossa_nova"]')
    page.check("#blend-on")
    page.select_option("#blend-style", "house")
    page.fill("#blend-amount", "30")
    page.uncheck('#band-tracks [data-track="pad"] .track-on')
    page.select_option('#band-tracks [data-track="lead"] .track-instrument', "flute")
    page.fill("#song-energy", "0.8")
    page.fill("#param-key", "A minor")
    page.fill("#param-tempo", "140")
    page.fill("#param-length", "20")
    page.click("#params-more-box summary")
    page.fill("#param-seed", "3")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#result').dataset.status === 'succeeded'",
                           timeout=GENERATE_TIMEOUT_MS)
    record = page.evaluate("state.current")
    params, result = record["params"], record["result"]
    assert params["style"] == "bossa_nova:0.70+house:0.30" and result["styles"] == {"bossa_nova": 0.7, "house": 0.3}
    assert params["tracks"] == ["drums", "bass", "chords", "lead"] and params["instruments"] == {"lead": "flute"}
    assert params["energy"] == 0.8 and params["key"] == "A minor" and params["tempo"] == 140
    assert result["bars"] == round(20 / (4 * 60 / 140)) and "70% Bossa nova + 30% House" in page.text_content(
        "#result-details")
    tracks = [t["name"] for t in result["tracks"]]
    assert tracks == params["tracks"]

    # the sections on the timeline, one piano roll per track (as many notes as the job says, in the track's colour)
    page.wait_for_function(f"document.querySelectorAll('#tracks li .roll canvas').length === {len(tracks)}",
                           timeout=30_000)
    shown = page.eval_on_selector_all("#sections li", "items => items.map(i => [i.dataset.section, i.title])")
    assert shown == [[s["name"], f"{s['name']}: bars {s['bars'][0]}–{s['bars'][1]}"] for s in result["sections"]]
    rolls = page.evaluate("""() => [...document.querySelectorAll('#tracks li')].map(li => {
        const canvas = li.querySelector('canvas');
        const colour = trackColour(li.dataset.track, 0).match(/\\w\\w/g).map(h => parseInt(h, 16));
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let painted = 0;
        for (let i = 0; i < pixels.length; i += 4) {
            if (pixels[i + 3] > 0 && [0, 1, 2].every(c => Math.abs(pixels[i + c] - colour[c]) < 12)) painted++;
        }
        return {track: li.dataset.track, notes: Number(canvas.dataset.notes), painted, width: canvas.width};
    })""")
    assert [r["track"] for r in rolls] == tracks
    for roll, track in zip(rolls, result["tracks"], strict=True):
        assert roll["notes"] == track["notes"] and roll["width"] > 300, (roll, track)
        assert (roll["painted"] > 0) == (track["notes"] > 0), roll
    assert page.locator("#pianoroll").is_hidden()  # the rolls replace the one-picture piano roll

    # play the tracks through Web Audio; a muted track's gain goes to 0, a solo leaves only its track
    page.click("#mixer-play")
    page.wait_for_function(f"document.body.dataset.tracksPlaying === '{len(tracks)}'", timeout=30_000)
    gains = "Object.fromEntries(state.tracks.map(t => [t.name, t.gain.gain.value]))"
    assert page.evaluate(gains) == dict.fromkeys(tracks, 1)
    page.click('#tracks li[data-track="drums"] .mute')
    assert page.evaluate(gains) == {name: 0 if name == "drums" else 1 for name in tracks}
    assert "silent" in page.get_attribute('#tracks li[data-track="drums"]', "class")
    assert page.get_attribute('#tracks li[data-track="drums"] .mute', "aria-pressed") == "true"
    page.click('#tracks li[data-track="bass"] .solo')
    assert page.evaluate(gains) == {name: 1 if name == "bass" else 0 for name in tracks}
    playhead = "Number(getComputedStyle(document.querySelector('#mixer')).getPropertyValue('--playhead'))"
    page.wait_for_function(f"{playhead} > 0", timeout=10_000)
    last = float(page.get_attribute("#sections li:last-child", "data-start"))
    assert page.evaluate(playhead) < last - 0.2  # playing from the start, far from the last section
    page.click("#sections li:last-child")  # plays from there, with the same mute and solo
    page.wait_for_function(f"{playhead} >= {last}", timeout=5_000)
    assert page.evaluate(gains) == {name: 1 if name == "bass" else 0 for name in tracks}
    shot = tmp_path / "studio-song.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"studio screenshot: {shot}")

    # downloads: the stems as a zip (a WAV per track), the MIDI (a named track per track), the mix
    stems = _download(page, "#download-stems", tmp_path)
    with zipfile.ZipFile(stems) as archive:
        assert sorted(archive.namelist()) == sorted(f"{t}.wav" for t in tracks)
        for name in archive.namelist():
            with wave.open(io.BytesIO(archive.read(name))) as stem:
                assert stem.getnframes() > stem.getframerate() * 10, name  # 20 s of song, not a header
    midi = mido.MidiFile(_download(page, "#download-mid", tmp_path))
    assert [t.name for t in midi.tracks if any(m.type == "note_on" for m in t)] == [
        t["name"] for t in result["tracks"] if t["notes"]]
    with wave.open(str(_download(page, "#download-wav", tmp_path))) as mix:
        assert mix.getnchannels() == 2 and mix.getnframes() > mix.getframerate() * 10
    assert page.problems == []


def _download(page, button: str, folder):
    with page.expect_download(timeout=30_000) as caught:
        page.click(button)
    path = folder / caught.value.suggested_filename
    caught.value.save_as(path)
    return path


def test_a_melody_upload_is_arranged_when_the_family_takes_one(song_server, page):
    """A song arranges an uploaded melody (params.input) when its family's schema has ``input``; else the panel
    says the model does not, and the file input is off."""
    server, settings = song_server
    card = open_song_panel(page, server, settings, "song-melody")
    if "input" not in card["params"]:
        assert page.is_disabled("#melody-file")
        assert "does not arrange a melody" in page.text_content("#melody-song")
        return
    page.set_input_files("#melody-file", files=[{"name": "melody.mid", "mimeType": "audio/midi",
                                                 "buffer": midi_bytes(MELODY, key="G")}])
    page.wait_for_function("document.querySelector('#melody-summary').textContent.includes('7 notes')")
    assert page.locator("#melody-mode").is_hidden()  # no continue/harmonize choice: the band arranges it
    page.click('#style-list .style-option[data-style="pop_ballad"]')
    page.click("#generate")
    page.wait_for_function("['succeeded', 'failed'].includes(document.querySelector('#result').dataset.status)",
                           timeout=GENERATE_TIMEOUT_MS)
    record = page.evaluate("state.current")
    assert record["status"] == "succeeded", record.get("error")
    assert record["params"]["input"] == page.evaluate("state.upload.id") and "harmonize" not in record["params"]
    assert page.problems == []


def test_a_recorded_take_becomes_the_melody(song_server, page, tmp_path):
    """A WAV take of five notes is transcribed by the analyzer and uploaded as a MIDI melody of five notes."""
    server, settings = song_server
    card = open_song_panel(page, server, settings, "song-take")
    if "input" not in card["params"]:
        page.select_option("#model", "folk")  # this song model takes no melody: a composer continues the take
    sr, pitches = 22_050, [60, 62, 64, 65, 67]
    t = np.arange(int(0.45 * sr)) / sr
    gap = np.zeros(int(0.1 * sr))
    take = np.concatenate([np.concatenate([0.4 * np.sin(2 * np.pi * 440 * 2 ** ((p - 69) / 12) * t) *
                                           np.minimum(1, np.minimum(t, t[-1] - t) / 0.01), gap]) for p in pitches])
    path = tmp_path / "take.wav"
    sf.write(path, take.astype(np.float32), sr)
    page.set_input_files("#melody-file", str(path))
    page.wait_for_function("document.querySelector('#melody-summary').textContent.includes('heard in') || "
                           "document.querySelector('[data-error-for~=\"file\"]').textContent !== ''",
                           timeout=60_000)
    summary = page.text_content("#melody-summary")
    assert summary.startswith("take.mid: MIDI, 1 part, 5 notes") and "heard in take.wav at" in summary, summary
    upload = page.evaluate("state.upload")
    assert upload["filename"] == "take.mid" and upload["notes"] == len(pitches)
    assert page.problems == []
