"""The Python SDK against a real server on 127.0.0.1 (uvicorn in a thread, the shipped chorale model, FluidSynth).

A second server without a worker holds jobs in the queue, so waiting, cancelling and 409 can be tested at will,
and has a low rate limit for the 429 case.
"""

from __future__ import annotations

import io

import mido
import pytest
import soundfile as sf

from tests.service_fixtures import free_port, live_server
from tests.test_service_support import make_key
from tunesmith.client import (
    ApiError,
    Client,
    Conflict,
    GenerationFailed,
    Job,
    NotFound,
    RateLimited,
    ServerError,
    ServerUnreachable,
    Unauthorized,
    Unprocessable,
    WaitTimeout,
    Work,
)
from tunesmith.config import Settings
from tunesmith.errors import ParameterError, TunesmithError

IDLE_RATE = 12  # requests per minute per key on the server without a worker


def secret(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


@pytest.fixture(scope="module")
def server(shipped_server):
    return shipped_server


@pytest.fixture(scope="module")
def client(server):
    live, settings = server
    with Client(live.url, secret(make_key(settings, "sdk"))) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def chorale(client):
    """A 2-bar chorale made through the SDK, with the progress it reported."""
    seen: list[tuple[float, str]] = []
    work = client.generate("chorale", key="G major", bars=2, tempo=120, seed=5, formats=["wav", "flac"],
                           progress=lambda fraction, status: seen.append((fraction, status)))
    return work, seen


@pytest.fixture(scope="module")
def idle(tmp_path_factory):
    """A server with no worker (jobs stay queued) and a rate limit of IDLE_RATE per minute."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("idle-server"), workers=0, preload=[],
                        requests_per_minute=IDLE_RATE)
    with live_server(settings) as live:
        yield live, settings


def test_health_and_models_need_no_key(server):
    with Client(server[0].url) as anonymous:
        health = anonymous.health()
        models = {m["id"]: m for m in anonymous.models()}
    assert health["status"] == "ok" and health["models"]["chorale"]["loaded"] is True
    assert {"chorale", "folk"} <= set(models)
    assert models["chorale"]["params"]["bars"]["minimum"] == 1 and models["chorale"]["voices"] == 4


def test_generate_waits_with_progress_and_downloads_every_format(client, chorale, tmp_path):
    work, seen = chorale
    assert isinstance(work, Work) and work.status == "succeeded" and work.done
    assert work.params["key"] == "G major" and work.params["bars"] == 2 and work.params["seed"] == 5
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and seen[-1][1] == "succeeded"
    wav = client.download(work, tmp_path / "piece.wav")
    audio, sr = sf.read(wav)
    assert sr == 44100 and audio.shape[0] / sr == pytest.approx(work.audio_seconds, abs=1e-3)
    assert abs(audio).max() > 0.01
    midi = mido.MidiFile(client.download(work.id, tmp_path / "piece.mid"))
    assert sum(1 for track in midi.tracks for m in track if m.type == "note_on" and m.velocity > 0) >= 4
    assert client.download(work, tmp_path / "piece.flac").read_bytes()[:4] == b"fLaC"
    ogg = client.download(work, tmp_path / "other-name.bin", format="ogg")
    assert sf.read(io.BytesIO(ogg.read_bytes()))[0].shape[0] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other-name.bin", "piece.flac", "piece.mid", "piece.wav"]
    with pytest.raises(ParameterError, match="aiff"):
        client.download(work, tmp_path / "piece.aiff")


def test_work_works_and_delete(client, chorale):
    work, _ = chorale
    fetched = client.work(work.id).raw
    # provenance gains the content hash of each format made later (other tests download more formats)
    assert {k: v for k, v in fetched.items() if k != "provenance"} == \
        {k: v for k, v in work.raw.items() if k != "provenance"}
    assert fetched["provenance"]["manifest"] == work.raw["provenance"]["manifest"]
    extra = client.generate("folk", bars=1, seed=2)
    listed = [w.id for w in client.works(limit=1)]  # one per page: the iterator follows the pages
    assert listed[:2] == [extra.id, work.id] and len(listed) == len(set(listed))
    assert client.delete(extra) is None  # a finished work is deleted
    with pytest.raises(NotFound) as missing:
        client.work(extra.id)
    assert missing.value.status == 404 and missing.value.code == "not_found" and missing.value.field == "id"


def test_a_handle_waits_and_a_failed_wait_is_an_error(client):
    job = client.generate("folk", bars=1, seed=3, wait=False)
    assert isinstance(job, Job) and job.work.status in ("queued", "running")
    assert job.wait().status == "succeeded" and job.refresh().status == "succeeded"
    assert job.cancel().status == "succeeded"  # a finished job is left as it is


def test_queued_jobs_time_out_cancel_and_conflict(idle):
    live, settings = idle
    with Client(live.url, secret(make_key(settings, "patient"))) as sdk:
        with pytest.raises(WaitTimeout, match=r"did not finish within 0\.5 s"):
            sdk.generate("chorale", bars=1, timeout=0.5)
        job = sdk.generate("chorale", bars=1, wait=False)
        with pytest.raises(Conflict) as conflict:
            sdk.download(job.work, "never.wav")
        assert conflict.value.status == 409 and "queued" in conflict.value.message
        assert job.cancel().status == "cancelled"
        with pytest.raises(GenerationFailed, match="cancelled") as failed:
            job.wait()
        assert failed.value.work.status == "cancelled"


def test_typed_errors_401_404_422(server):
    live, settings = server
    with Client(live.url, "ts_not-a-key") as stranger, pytest.raises(Unauthorized) as unauthorized:
        stranger.generate("chorale", bars=1)
    assert unauthorized.value.status == 401 and str(unauthorized.value).startswith("401 unauthorized: ")
    with Client(live.url, secret(make_key(settings, "errors"))) as sdk:
        with pytest.raises(NotFound):
            sdk.work("no-such-id")
        with pytest.raises(NotFound):
            sdk.download("no-such-id", "x.mid")
        with pytest.raises(Unprocessable) as bars:
            sdk.generate("chorale", bars=0)
        assert bars.value.status == 422 and bars.value.field == "params.bars" and bars.value.code == "invalid_parameter"
        with pytest.raises(Unprocessable) as model:
            sdk.generate("theremin")
        assert model.value.field == "model" and "theremin" in model.value.message
        with pytest.raises(Unprocessable) as prompt:
            sdk.generate(prompt="xyzzy plugh")
        assert prompt.value.field == "prompt"
    assert all(issubclass(cls, (ApiError, TunesmithError)) for cls in (Unauthorized, NotFound, Unprocessable))


def test_rate_limit_is_429_with_retry_after(idle):
    live, settings = idle
    with Client(live.url, secret(make_key(settings, "hasty"))) as sdk:
        for _ in range(IDLE_RATE):
            next(iter(sdk.works()), None)
        with pytest.raises(RateLimited) as limited:
            list(sdk.works())
    assert limited.value.status == 429 and limited.value.code == "rate_limited"
    assert 1 <= limited.value.retry_after <= 60


def test_an_unreachable_server_is_a_connection_error():
    with Client(f"http://127.0.0.1:{free_port()}", "ts_x", timeout=2) as sdk, \
            pytest.raises(ServerUnreachable, match="cannot reach the Tunesmith server") as unreachable:
        sdk.health()
    assert isinstance(unreachable.value, ConnectionError)
    with pytest.raises(ParameterError, match="http"):
        Client("127.0.0.1:8000")


def _route_or_skip(call, route: str):
    try:
        return call()
    except NotFound as exc:
        if exc.message == "Not Found":  # the framework's answer: no such route (yet) on this server
            pytest.skip(f"the server has no {route} route yet")
        raise
    except ServerError as exc:
        if exc.status == 503 and exc.code == "missing_dependency":  # e.g. no analyzer model is shipped
            pytest.skip(f"{route}: {exc.message}")
        raise


def test_generate_with_an_input_melody_uploads_it_first(client, tmp_path):
    melody = tmp_path / "melody.mid"
    track = mido.MidiTrack([mido.MetaMessage("time_signature", numerator=4, denominator=4)])
    for pitch in (67, 69, 71, 72, 71, 69, 67, 67):
        track += [mido.Message("note_on", note=pitch, velocity=80, time=0),
                  mido.Message("note_off", note=pitch, velocity=0, time=480)]
    mido.MidiFile(tracks=[track], ticks_per_beat=480).save(melody)
    upload = _route_or_skip(lambda: client.upload(melody), "POST /v1/uploads")
    assert upload["id"] and upload["notes"] == 8
    work = client.generate("chorale", input=melody, harmonize=True, seed=1)
    assert work.status == "succeeded" and work.params["harmonize"] is True
    with pytest.raises(ParameterError, match="harmonize"):
        client.generate("chorale", harmonize=True)


def test_analyze(client, chorale, tmp_path):
    wav = client.download(chorale[0], tmp_path / "made.wav")
    analysis = _route_or_skip(lambda: client.analyze(wav, timeout=120), "POST /v1/analyses")
    assert analysis["status"] == "succeeded" and analysis["filename"] == "made.wav"
    assert analysis["duration"] == pytest.approx(chorale[0].audio_seconds, abs=0.05)


def test_verify(client, chorale, tmp_path):
    wav = client.download(chorale[0], tmp_path / "made.wav")
    verdict = _route_or_skip(lambda: client.verify(wav), "POST /v1/verifications")
    assert isinstance(verdict, dict) and verdict
