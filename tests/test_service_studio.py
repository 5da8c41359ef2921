"""The web studio end to end: a real server (uvicorn, SQLite, embedded worker, the shipped chorale model) and a real
headless Chromium (the Debian package, driven by Playwright; Playwright's own browser download is never used).

Each test prints where its screenshot is.
"""

from __future__ import annotations

import shutil

import pytest

from tests.service_fixtures import unavailable
from tests.test_service_support import make_key
from tests.test_service_uploads import MELODY, midi_bytes

GENERATE_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium")
    if executable is None:
        unavailable("chromium", "no chromium on PATH (Debian package chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("chromium", "the Python package playwright is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=[
            "--headless", "--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.problems = []
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    page.on("console", lambda message: page.problems.append(message.text) if message.type == "error" else None)
    yield page
    page.close()


def open_studio(page, server, key: str | None) -> None:
    page.goto(f"{server.url}/")
    page.wait_for_selector("#param-bars")  # the form is built from GET /v1/models
    if key is not None:
        page.fill("#api-key", key)
        page.click("#key-save")
        page.wait_for_function("document.querySelector('#key-status').textContent.includes('saved')")


def secret_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def test_studio_page_and_files_are_served(shipped_server):
    import httpx2 as httpx

    server, _ = shipped_server
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<title>Tunesmith Studio</title>" in page.text and "http" not in page.text.replace("http-equiv", "")
    for name, kind in (("studio.js", "text/javascript"), ("studio.css", "text/css"), ("favicon.svg", "image/svg")):
        response = httpx.get(f"{server.url}/studio/{name}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind), name
        assert "://" not in response.text.replace("http://www.w3.org/2000/svg", "")  # nothing from a CDN
    assert httpx.get(f"{server.url}/studio/secrets.txt").status_code == 404


def test_generate_a_chorale_and_play_it(shipped_server, page, tmp_path):
    server, settings = shipped_server
    open_studio(page, server, secret_of(make_key(settings, "studio")))
    page.select_option("#model", "chorale")
    page.fill("#param-bars", "2")
    page.fill("#param-tempo", "120")
    page.fill("#param-seed", "7")
    page.evaluate("""() => {  // remember every status the result card shows
        window.seen = [];
        new MutationObserver(() => window.seen.push(document.querySelector('#result').dataset.status))
            .observe(document.querySelector('#result'), {attributes: true, attributeFilter: ['data-status']});
    }""")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#result').dataset.status === 'succeeded' && "
                           "document.querySelector('#player').src.startsWith('blob:')", timeout=GENERATE_TIMEOUT_MS)
    seen = page.evaluate("window.seen")
    assert seen[-1] == "succeeded" and {"queued", "running"} & set(seen), seen

    audio = page.evaluate("""async () => {
        const a = document.querySelector('#player');
        if (a.readyState < 1) await new Promise((resolve, reject) => {
            a.addEventListener('loadedmetadata', resolve, {once: true});
            a.addEventListener('error', () => reject(new Error('audio error ' + a.error?.code)), {once: true});
        });
        const blob = await (await fetch(a.src)).blob();
        const head = new Uint8Array(await blob.slice(0, 12).arrayBuffer());
        const text = (bytes) => String.fromCharCode(...bytes);
        let played = true;
        try { await a.play(); } catch (error) { played = String(error); }
        await new Promise((resolve) => setTimeout(resolve, 800));
        const position = a.currentTime;
        a.pause();
        return {duration: a.duration, size: blob.size, riff: text(head.slice(0, 4)) + text(head.slice(8, 12)),
                played, position};
    }""")
    assert audio["riff"] == "RIFFWAVE" and audio["size"] > 44_100, audio  # more than a header: seconds of sound
    assert audio["duration"] == pytest.approx(2 * 4 * 60 / 120 + 1.0, abs=0.1), audio  # 2 bars at 120 BPM + tail
    assert audio["played"] is True and audio["position"] > 0, audio

    page.wait_for_function("['#spectrogram', '#pianoroll'].every(s => { const i = document.querySelector(s); "
                           "return i.src.startsWith('blob:') && i.complete && i.naturalWidth > 300; })")
    assert "chorale" in page.text_content("#result-title") and "2 bars" in page.text_content("#result-title")
    first = page.locator("#history button").first
    assert "chorale" in first.text_content() and first.get_attribute("aria-current") == "true"
    shot = tmp_path / "studio.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"studio screenshot: {shot}")
    assert shot.stat().st_size > 10_000
    assert page.problems == []


def test_the_result_card_is_finished_only_when_its_record_is_here(shipped_server, page):
    """A progress event saying the job finished moves the badge, but the result card's status (what scripts and
    tests wait on) stays its record's until the finished record itself arrives."""
    server, settings = shipped_server
    open_studio(page, server, secret_of(make_key(settings, "studio-race")))
    shown = page.evaluate("""() => {
        showRecord({id: "job-1", status: "running", progress: 0.5, model: "chorale", params: {}});
        onEvent("job-1", 'event: progress\\ndata: {"status": "succeeded", "progress": 1}');
        return [document.querySelector('#result').dataset.status, document.querySelector('#status').className,
                state.current.status];
    }""")
    assert shown == ["running", "badge succeeded", "running"]
    assert page.problems == []


def test_errors_appear_next_to_their_fields(shipped_server, page, tmp_path):
    server, settings = shipped_server
    open_studio(page, server, None)
    page.click("#generate")
    assert "API key" in page.text_content('[data-error-for="key"]')
    page.fill("#api-key", "ts_not-a-key")
    page.click("#key-save")
    page.wait_for_function("document.querySelector('[data-error-for=\"key\"]').textContent.includes('unknown')")

    page.fill("#api-key", secret_of(make_key(settings, "studio-errors")))
    page.click("#key-save")
    page.wait_for_function("document.querySelector('#key-status').textContent.includes('saved')")
    page.select_option("#model", "chorale")
    page.fill("#param-bars", "99")
    page.click("#generate")
    page.wait_for_function("document.querySelector('[data-error-for=\"params.bars\"]').textContent !== ''")
    assert "bars" in page.text_content('[data-error-for="params.bars"]')
    assert page.get_attribute("#param-bars", "aria-invalid") == "true"
    page.fill("#param-bars", "")
    page.fill("#prompt", "xyzzy plugh")
    page.click("#generate")
    page.wait_for_function("document.querySelector('[data-error-for=\"prompt\"]').textContent !== ''")
    assert "understood" in page.text_content('[data-error-for="prompt"]')

    page.set_input_files("#melody-file", files=[{"name": "noise.mid", "mimeType": "audio/midi",
                                                 "buffer": bytes(range(256)) * 4}])
    page.wait_for_function("document.querySelector('[data-error-for~=\"file\"]').textContent !== ''")
    assert "not a readable MIDI file" in page.text_content('[data-error-for~="file"]')
    shot = tmp_path / "studio-errors.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"studio screenshot: {shot}")
    assert page.problems == [] or all("Failed to load resource" in p for p in page.problems), page.problems


def test_a_melody_upload_offers_continue_and_harmonize(shipped_server, page):
    server, settings = shipped_server
    open_studio(page, server, secret_of(make_key(settings, "studio-melody")))
    page.set_input_files("#melody-file", files=[{"name": "melody.mid", "mimeType": "audio/midi",
                                                 "buffer": midi_bytes(MELODY, key="G")}])
    page.wait_for_selector("#melody-mode:not([hidden])")
    assert page.text_content("#melody-summary") == "melody.mid: MIDI, 1 part, 7 notes, 2 bars, G major"
    page.select_option("#model", "folk")
    assert page.is_disabled("#harmonize")  # one voice: only continuation
    page.select_option("#model", "chorale")
    page.check("#harmonize")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#result').dataset.status === 'succeeded'",
                           timeout=GENERATE_TIMEOUT_MS)
    details = page.text_content("#result-details")
    assert "harmonize" in details and "G major" in details


def test_a_prompt_chooses_the_model_and_its_reading_is_shown(shipped_server, page):
    server, settings = shipped_server
    open_studio(page, server, secret_of(make_key(settings, "prompt")))
    page.select_option("#model", "")  # auto: the prompt chooses
    assert "the prompt chooses" in page.text_content("#model-description")
    page.fill("#prompt", "a calm chorale in G major for strings, 1 bar")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#result').dataset.status === 'succeeded'",
                           timeout=GENERATE_TIMEOUT_MS)
    notes = page.text_content("#result-notes")
    assert "model: chorale" in notes and 'from "calm"' in notes and "G major" in notes, notes
    assert page.problems == []


def test_stems_play_with_mute_and_solo_and_download_as_a_zip(shipped_server, browser, tmp_path):
    """Generate with stems, play the tracks through Web Audio, mute one and solo another, download the zip."""
    import zipfile

    server, settings = shipped_server
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    open_studio(page, server, secret_of(make_key(settings, "stems")))
    page.select_option("#model", "chorale")
    page.fill("#param-bars", "1")
    page.check("#want-stems")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#result').dataset.status === 'succeeded'",
                           timeout=GENERATE_TIMEOUT_MS)
    page.wait_for_selector("#tracks li")
    tracks = page.eval_on_selector_all("#tracks li", "items => items.map(i => i.dataset.track)")
    assert len(tracks) == 4, tracks  # the chorale's four voices
    page.click("#mixer-play")
    page.wait_for_function("document.body.dataset.tracksPlaying === '4'", timeout=30_000)
    page.click(f'#tracks li[data-track="{tracks[0]}"] .mute')
    assert page.evaluate("document.body.dataset.audibleTracks").split(",") == tracks[1:]
    page.click(f'#tracks li[data-track="{tracks[2]}"] .solo')
    assert page.evaluate("document.body.dataset.audibleTracks") == tracks[2]
    with page.expect_download() as caught:
        page.click("#download-stems")
    path = tmp_path / "stems.zip"
    caught.value.save_as(path)
    assert sorted(zipfile.ZipFile(path).namelist()) == sorted(f"{t}.wav" for t in tracks)
    shot = tmp_path / "studio-stems.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"studio screenshot: {shot}")
    assert problems == []
    page.close()
