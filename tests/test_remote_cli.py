"""`tunesmith generate ... --server URL --api-key KEY` and `tunesmith models --server URL` against a live server."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import mido
import pytest
import soundfile as sf

import tunesmith.cli as cli
from tests.service_fixtures import free_port
from tests.test_service_support import make_key

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def remote(shipped_server):
    """(server URL, an API key) of the shared live server."""
    live, settings = shipped_server
    return live.url, make_key(settings, "remote-cli")["Authorization"].removeprefix("Bearer ")


@pytest.fixture
def tunesmith(capsys, monkeypatch):
    """Run `tunesmith ARGS...` in this process; returns (exit code, stdout, stderr)."""
    monkeypatch.delenv("TUNESMITH_SERVER", raising=False)
    monkeypatch.delenv("TUNESMITH_API_KEY", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_generate_on_the_server_writes_wav_and_midi(remote, tunesmith, tmp_path):
    url, key = remote
    code, out, err = tunesmith("generate", "chorale", "--bars", "2", "--key", "E minor", "--tempo", "120",
                               "--seed", "4", "--server", url, "--api-key", key, "-o", str(tmp_path / "c.wav"))
    assert code == 0, err
    assert out.startswith(f"wrote {tmp_path / 'c.wav'}: ") and "E minor, 2 bars, seed 4" in out and url in out
    audio, sr = sf.read(tmp_path / "c.wav")
    assert sr == 44100 and audio.shape[0] / sr == pytest.approx(2 * 4 * 60 / 120 + 1.0, abs=0.05)
    code, _, err = tunesmith("generate", "chorale", "--bars", "2", "--key", "E minor", "--tempo", "120",
                             "--seed", "4", "--server", url, "--api-key", key, "-o", str(tmp_path / "c.mid"))
    assert code == 0, err
    notes = [m for t in mido.MidiFile(tmp_path / "c.mid").tracks for m in t if m.type == "note_on" and m.velocity]
    assert len(notes) >= 4


def test_environment_prompt_and_json(remote, tunesmith, tmp_path, monkeypatch):
    url, key = remote
    monkeypatch.setenv("TUNESMITH_SERVER", url)
    monkeypatch.setenv("TUNESMITH_API_KEY", key)
    code, out, err = tunesmith("generate", "folk", "--prompt", "a fast tune in G for violin, 2 bars", "--json",
                               "-o", str(tmp_path / "tune.flac"))
    assert code == 0, err
    report = json.loads(out)
    assert report["server"] == url and report["model"] == "folk" and report["output"] == str(tmp_path / "tune.flac")
    assert report["params"]["bars"] == 2 and report["params"]["instrument"] == "violin"
    tempo = report["interpretation"]["params"]["tempo"]
    assert tempo["words"] == ["fast"] and report["params"]["tempo"] == tempo["value"] >= 120
    assert (tmp_path / "tune.flac").read_bytes()[:4] == b"fLaC"
    assert sf.info(tmp_path / "tune.flac").duration == pytest.approx(report["audio_seconds"], abs=1e-3)


def test_models_from_the_server(remote, tunesmith):
    code, out, err = tunesmith("models", "--server", remote[0])
    assert code == 0, err
    assert out.startswith("chorale") and "params: key, bars 1-64" in out and "public domain" in out
    code, out, _ = tunesmith("models", "--server", remote[0], "--json")
    assert {card["id"] for card in json.loads(out)} >= {"chorale", "folk"}


@pytest.mark.parametrize(("extra", "needle"), [
    (["--api-key", "ts_wrong"], "tunesmith: error: 401 unauthorized: unknown API key"),
    (["--bars", "0"], "tunesmith: error: 422 invalid_parameter: "),
    (["--instrument", "kazoo"], "422 invalid_parameter: params.instrument: unknown instrument 'kazoo'"),
    (["--checkpoint", "runs/x"], "--checkpoint (a server runs its own models) cannot be used with --server"),
    (["--harmonize"], "--harmonize needs --input"),
])
def test_server_errors_are_one_line_and_exit_2(remote, tunesmith, tmp_path, extra, needle):
    url, key = remote
    code, out, err = tunesmith("generate", "chorale", "--server", url, "--api-key", key, *extra,
                               "-o", str(tmp_path / "x.wav"))
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], err
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_missing_key_and_unreachable_server(tunesmith, tmp_path):
    out = str(tmp_path / "x.wav")
    for args, needle in (
        (["--server", "http://127.0.0.1:9"], "--server needs --api-key"),
        (["--server", f"http://127.0.0.1:{free_port()}", "--api-key", "k"], "cannot reach the Tunesmith server"),
        (["--server", "127.0.0.1:8000", "--api-key", "k"], "must start with http://"),
    ):
        code, _, err = tunesmith("generate", "chorale", *args, "-o", out)
        assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, (args, err)


def test_a_real_process_shows_progress_on_a_terminal(remote, tmp_path):
    """`python -m tunesmith generate ...` with stderr on a pseudo-terminal: the bar reaches 100%."""
    url, key = remote
    env = {**os.environ, "TUNESMITH_SERVER": url, "TUNESMITH_API_KEY": key}
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    process = subprocess.Popen([sys.executable, "-m", "tunesmith", "generate", "folk", "--bars", "2", "-o",
                                str(tmp_path / "f.ogg")], stdout=subprocess.PIPE, stderr=secondary, env=env,
                               cwd=ROOT, text=True)
    os.close(secondary)
    shown = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the process closed its end
                break
            if not chunk:
                break
            shown += chunk
        elif process.poll() is not None:
            break
    os.close(primary)
    out = process.communicate(timeout=30)[0]
    assert process.returncode == 0, shown.decode(errors="replace")
    assert "wrote" in out and sf.info(tmp_path / "f.ogg").duration > 1
    text = shown.decode(errors="replace")
    assert f"folk on {url} [succeeded] 100%|" in text, text


def test_an_input_melody_is_uploaded_and_harmonized_on_the_server(remote, tunesmith, tmp_path):
    url, key = remote
    melody = tmp_path / "melody.mid"
    track = mido.MidiTrack()
    for pitch in (72, 71, 69, 71, 72, 74, 72, 72):
        track += [mido.Message("note_on", note=pitch, velocity=80, time=0),
                  mido.Message("note_off", note=pitch, velocity=0, time=480)]
    mido.MidiFile(tracks=[track], ticks_per_beat=480).save(melody)
    code, out, err = tunesmith("generate", "chorale", "--input", str(melody), "--harmonize", "--seed", "2",
                               "--server", url, "--api-key", key, "--json", "-o", str(tmp_path / "h.mid"))
    if code == 2 and "404 not_found: Not Found" in err:
        pytest.skip("the server has no POST /v1/uploads route yet")
    assert code == 0, err
    assert json.loads(out)["params"]["harmonize"] is True
    voices = [sorted({m.note for m in t if m.type == "note_on" and m.velocity}) for t in
              mido.MidiFile(tmp_path / "h.mid").tracks]
    assert sum(1 for v in voices if v) >= 4 and any(set(v) == {69, 71, 72, 74} for v in voices)


NOTES_WEIGHTS = ROOT / "weights" / "notes.json"
needs_notes = pytest.mark.skipif(not NOTES_WEIGHTS.is_file(), reason="needs the shipped notes model")


@needs_notes
def test_a_note_on_the_server_is_reported_like_a_local_one(remote, tunesmith, tmp_path):
    url, key = remote
    code, out, err = tunesmith("generate", "notes", "--instrument", "violin", "--pitch", "64", "--velocity", "90",
                               "--duration", "0.5", "--server", url, "--api-key", key, "-o", str(tmp_path / "n.wav"))
    assert code == 0, err
    assert out.startswith(f"wrote {tmp_path / 'n.wav'}: violin pitch 64 velocity 90, ") and "seed 0;" in out
    assert url in out
    audio, sr = sf.read(tmp_path / "n.wav")
    assert sr == 44100 and audio.shape[0] / sr == pytest.approx(0.5 + 0.5, abs=0.05)  # held, then the release
    assert float(abs(audio).max()) > 0.01  # not silence
    code, out, err = tunesmith("generate", "notes", "--instrument", "violin", "--pitch", "64", "--morph-to",
                               "flute", "--morph", "0.5", "--duration", "0.3", "--seed", "3", "--json",
                               "--server", url, "--api-key", key, "-o", str(tmp_path / "m.flac"))
    assert code == 0, err
    report = json.loads(out)
    assert (report["model"], report["instrument"], report["morph_to"], report["morph"], report["seed"]) == \
        ("notes", "violin", "flute", 0.5, 3)
    assert report["server"] == url and report["provenance"] and "originality" in report
    assert (tmp_path / "m.flac").read_bytes()[:4] == b"fLaC"


@needs_notes
@pytest.mark.parametrize(("args", "needle"), [
    (("notes", "--pitch", "64", "-o", "x.mid"), "notes makes audio"),
    (("perform", "-o", "x.wav"), "perform needs --input"),
    (("notes", "--instrument", "violin", "--pitch", "20", "-o", "x.wav"), "params.pitch"),
])
def test_neural_errors_on_the_server_are_one_line(remote, tunesmith, tmp_path, args, needle):
    url, key = remote
    *rest, out_flag, name = args
    code, _, err = tunesmith("generate", *rest, "--server", url, "--api-key", key, out_flag, str(tmp_path / name))
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / name).exists()


@needs_notes
def test_perform_uploads_the_score_and_plays_it_on_the_server(remote, tunesmith, tmp_path):
    url, key = remote
    score = tmp_path / "tune.mid"
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0)])  # 120 BPM
    for pitch in (60, 62, 64, 65):
        track += [mido.Message("note_on", note=pitch, velocity=80, time=0),
                  mido.Message("note_off", note=pitch, velocity=0, time=240)]
    mido.MidiFile(tracks=[track], ticks_per_beat=480).save(score)
    code, out, err = tunesmith("generate", "perform", "--input", str(score), "--instrument", "cello",
                               "--server", url, "--api-key", key, "-o", str(tmp_path / "p.wav"))
    assert code == 0, err
    assert out.startswith(f"wrote {tmp_path / 'p.wav'}: 4 notes played by the neural cello, "), out
    audio, sr = sf.read(tmp_path / "p.wav")
    assert sr == 44100 and 2.0 * 0.25 < audio.shape[0] / sr < 10.0 and float(abs(audio).max()) > 0.01
