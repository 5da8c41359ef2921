"""tunesmith.audio.io on real files: round trips, resampling on load, and every kind of bad input."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import dominant_frequency, sine
from tunesmith.audio import AUDIO_EXTENSIONS, SUPPORTED_FORMATS, info, load, save
from tunesmith.audio.io import _mp3_frame
from tunesmith.errors import AudioDecodeError, InputFileError, ParameterError

SR = 44_100


def stereo(seconds: float = 1.0) -> np.ndarray:
    return sine(440.0, sr=SR, seconds=seconds, amplitude=0.5, channels=2)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", SUPPORTED_FORMATS)
def test_round_trip_every_format(tmp_path, fmt):
    y = stereo()
    path = save(tmp_path / f"x.{fmt}", y, SR)
    z, sr = load(path, mono=False)
    assert sr == SR
    assert z.dtype == np.float32
    assert z.shape == y.shape
    if fmt in ("wav", "flac"):  # 16-bit PCM: exact up to quantisation
        assert np.max(np.abs(z - y)) < 2.0 / 32768
    else:
        for ch in range(2):
            assert np.corrcoef(y[ch], z[ch])[0, 1] > 0.99
    meta = info(path)
    assert (meta.sr, meta.channels, meta.frames, meta.format) == (SR, 2, y.shape[1], fmt)
    assert meta.duration == pytest.approx(1.0)


def test_save_clips_and_creates_parent_dirs(tmp_path):
    y = np.array([0.0, 2.0, -3.0, 0.5] * 100, dtype=np.float32)
    path = save(tmp_path / "a" / "b" / "loud.flac", y, 16_000)
    z, _ = load(path)
    assert np.max(z) <= 1.0 and np.min(z) >= -1.0
    assert np.max(z) > 0.99 and np.min(z) < -0.99
    assert sorted(p.name for p in path.parent.iterdir()) == ["loud.flac"]  # no temp file left


def test_save_format_override_and_subtype(tmp_path):
    path = save(tmp_path / "x.bin", sine(sr=16_000), 16_000, format="wav", subtype="FLOAT")
    meta = sf.info(path)
    assert (meta.format, meta.subtype) == ("WAV", "FLOAT")


def test_load_resamples_and_mixes_down(sine_file):
    path = sine_file("tone.wav", sr=SR, freq=1000.0, seconds=1.0, channels=2)
    y, sr = load(path, sr=16_000)
    assert sr == 16_000 and y.ndim == 1
    assert len(y) == 16_000
    assert dominant_frequency(y, sr) == pytest.approx(1000.0, abs=2.0)


def test_eight_channels_load_and_mix_down(tmp_path):
    data = np.stack([sine(100.0 * (k + 1), sr=16_000, amplitude=0.1) for k in range(8)])
    path = tmp_path / "octo.wav"
    sf.write(path, data.T, 16_000, subtype="FLOAT")
    multi, _ = load(path, mono=False)
    assert multi.shape == (8, 16_000)
    np.testing.assert_allclose(multi, data, atol=1e-7)
    mono, _ = load(path)
    np.testing.assert_allclose(mono, data.mean(axis=0), atol=1e-6)


@pytest.mark.parametrize("fmt", SUPPORTED_FORMATS)
def test_offset_and_duration_select_the_same_samples(tmp_path, fmt):
    y = stereo(seconds=2.0)
    path = save(tmp_path / f"x.{fmt}", y, SR)
    full, _ = load(path)
    part, _ = load(path, offset=0.5, duration=0.25)
    start = round(0.5 * SR)
    assert part.shape == (round(0.25 * SR),)
    # MP3 is decoded from the start and sliced (libsndfile's MP3 seek is not sample-accurate)
    np.testing.assert_allclose(part, full[start : start + len(part)], atol=1e-6)


def test_max_duration_and_bad_load_parameters(sine_file):
    path = sine_file(seconds=2.0)
    with pytest.raises(ParameterError, match="max_duration"):
        load(path, max_duration=1.0)
    assert load(path, duration=0.5, max_duration=1.0)[0].shape == (8_000,)
    with pytest.raises(ParameterError, match="offset"):
        load(path, offset=5.0)
    with pytest.raises(ParameterError, match="sr"):
        load(path, sr=5)
    with pytest.raises(ParameterError, match="duration"):
        load(path, duration=-1.0)


# --------------------------------------------------------------------------- bad files


def test_missing_path_and_empty_file(tmp_path):
    with pytest.raises(InputFileError, match="no such file") as missing:
        load(tmp_path / "nope.wav")
    assert not isinstance(missing.value, AudioDecodeError)
    empty = tmp_path / "empty.wav"
    empty.touch()
    with pytest.raises(InputFileError, match="empty") as err:
        load(empty)
    assert not isinstance(err.value, AudioDecodeError)
    with pytest.raises(InputFileError, match="not a regular file"):
        load(tmp_path)


def test_truncated_wav_is_rejected(sine_file):
    path = sine_file("cut.wav", seconds=1.0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 + 1])
    # libsndfile alone would read the half that is there without complaint
    assert 0 < sf.info(path).frames < 16_000
    with pytest.raises(AudioDecodeError, match=r"cut\.wav.*truncated"):
        load(path)
    with pytest.raises(AudioDecodeError, match="truncated"):
        info(path)


@pytest.mark.parametrize("fmt", ["flac", "ogg", "mp3"])
def test_truncated_compressed_files_are_rejected(tmp_path, fmt):
    path = save(tmp_path / f"cut.{fmt}", stereo(seconds=2.0), SR)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioDecodeError, match=rf"cut\.{fmt}"):
        load(path)


def test_garbage_and_wrong_content(tmp_path, sine_file):
    garbage = tmp_path / "noise.mp3"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(AudioDecodeError, match=r"noise\.mp3"):
        load(garbage)
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 20)
    with pytest.raises(AudioDecodeError, match=r"notes\.wav"):
        info(text)
    # real audio under the wrong extension decodes by content
    flac = save(tmp_path / "real.flac", sine(sr=16_000), 16_000)
    renamed = flac.rename(tmp_path / "real.mp3")
    y, sr = load(renamed)
    assert sr == 16_000 and y.shape == (16_000,)


def test_header_only_wav_has_no_frames(sine_file):
    path = sine_file("hollow.wav")
    path.write_bytes(path.read_bytes()[:44])  # a canonical header, data size still says 32000
    with pytest.raises(AudioDecodeError, match=r"hollow\.wav"):
        load(path)


@pytest.mark.parametrize("rate", [5, 10_000_000])
def test_absurd_sample_rate_in_header(sine_file, rate):
    path = sine_file("odd.wav")
    header = bytearray(path.read_bytes())
    assert header[:4] == b"RIFF" and header[12:16] == b"fmt "
    header[24:28] = struct.pack("<I", rate)  # sample rate
    header[28:32] = struct.pack("<I", rate * 2)  # byte rate (mono 16-bit)
    path.write_bytes(bytes(header))
    with pytest.raises(AudioDecodeError, match=rf"odd\.wav.*{rate}"):
        load(path)


def test_mp3_without_length_header_is_not_silently_cut(tmp_path):
    path = save(tmp_path / "vbr.mp3", sine(sr=SR, seconds=5.0), SR)
    data = path.read_bytes()
    assert 0 <= data.find(b"Xing") < 100
    first_frame_bytes, _ = _mp3_frame(data[:4])
    path.write_bytes(data[first_frame_bytes:])  # drop the frame carrying the Xing/Info tag
    # libsndfile now trusts a bitrate-based estimate and would stop decoding early
    assert sf.info(path).frames < 0.9 * 5 * SR
    with pytest.raises(AudioDecodeError, match=r"vbr\.mp3.*Xing"):
        load(path)

# --------------------------------------------------------------------------- save errors


def test_save_rejects_bad_requests(tmp_path):
    y = sine(sr=16_000)
    with pytest.raises(ParameterError, match=r"\.xyz"):
        save(tmp_path / "x.xyz", y, 16_000)
    with pytest.raises(ParameterError, match="empty"):
        save(tmp_path / "x.wav", np.zeros(0, np.float32), 16_000)
    with pytest.raises(ParameterError, match="NaN"):
        save(tmp_path / "x.wav", np.full(10, np.nan, np.float32), 16_000)
    with pytest.raises(ParameterError, match="96000"):
        save(tmp_path / "x.mp3", y, 96_000)
    with pytest.raises(ParameterError, match="dtype"):
        save(tmp_path / "x.wav", np.zeros(100, np.int16), 16_000)
    assert not list(tmp_path.iterdir())


def test_extension_table():
    assert {".wav", ".flac", ".ogg", ".mp3"} <= set(AUDIO_EXTENSIONS)
