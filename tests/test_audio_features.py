"""tunesmith.audio.features: log-mel and CQT on real signals, checked against librosa."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from tests.conftest import sine
from tunesmith.audio import cqt, log_mel
from tunesmith.errors import ParameterError

SR = 16_000


def test_log_mel_shape_and_dtype():
    y = sine(sr=SR, seconds=1.0)
    mel = log_mel(y, sr=SR)
    assert mel.shape == (128, 1 + SR // 256)
    assert mel.dtype == np.float32
    batch = log_mel(np.stack([y, y, y]), sr=SR, n_mels=64, hop_length=160)
    assert batch.shape == (3, 64, 1 + SR // 160)


@pytest.mark.parametrize("freq", [300.0, 1000.0, 4000.0])
def test_sine_energy_sits_in_the_right_mel_band(freq):
    mel = log_mel(sine(freq, sr=SR), sr=SR, n_mels=64)
    band = int(np.argmax(mel.mean(axis=1)))
    centres = librosa.mel_frequencies(n_mels=64 + 2, fmin=0.0, fmax=SR / 2)[1:-1]
    expected = int(np.argmin(np.abs(centres - freq)))
    assert abs(band - expected) <= 1


def test_log_mel_matches_librosa():
    y = np.random.default_rng(0).standard_normal((2, 12_345)).astype(np.float32) * 0.1
    ours = log_mel(y, sr=SR, n_fft=512, hop_length=128, n_mels=80, fmin=30.0, fmax=7_000.0, top_db=None)
    power = librosa.feature.melspectrogram(
        y=y, sr=SR, n_fft=512, hop_length=128, n_mels=80, fmin=30.0, fmax=7_000.0
    )
    np.testing.assert_allclose(ours, librosa.power_to_db(power, ref=1.0, top_db=None), atol=1e-3)


def test_precomputed_power_spectrogram_gives_the_same_result():
    y = sine(700.0, sr=SR) + 0.01 * np.random.default_rng(1).standard_normal(SR).astype(np.float32)
    S = np.abs(librosa.stft(y, n_fft=1024, hop_length=256)) ** 2
    np.testing.assert_allclose(log_mel(S=S, sr=SR), log_mel(y, sr=SR), atol=1e-3)


def test_top_db_floors_each_item_separately():
    loud = sine(sr=SR, amplitude=0.5)
    quiet = sine(sr=SR, amplitude=0.5e-4)  # 80 dB quieter
    mel = log_mel(np.stack([loud, quiet]), sr=SR, top_db=30.0)
    for item in mel:
        assert item.max() - item.min() == pytest.approx(30.0, abs=1e-3)
    assert mel[0].max() - mel[1].max() == pytest.approx(80.0, abs=0.5)


def test_long_input_is_chunked_without_seams():
    y = np.random.default_rng(2).standard_normal(SR * 40).astype(np.float32) * 0.1  # > 2048 frames
    ours = log_mel(y, sr=SR, top_db=None)
    power = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=1024, hop_length=256, n_mels=128)
    np.testing.assert_allclose(ours, librosa.power_to_db(power, top_db=None), atol=1e-3)


def test_cqt_puts_a4_in_its_bin():
    spec = cqt(sine(440.0, sr=SR, seconds=2.0), sr=SR)
    assert spec.shape[0] == 84
    assert int(np.argmax(spec.mean(axis=1))) == 69 - 24  # MIDI A4 (69) above C1 (24)


def test_feature_parameter_errors():
    y = sine(sr=SR)
    with pytest.raises(ParameterError, match="exactly one"):
        log_mel(y, sr=SR, S=np.ones((513, 10), np.float32))
    with pytest.raises(ParameterError, match="fmax"):
        log_mel(y, sr=SR, fmax=9_000.0)
    with pytest.raises(ParameterError, match="n_fft"):
        log_mel(y, sr=SR, n_fft=8)
    with pytest.raises(ParameterError, match="S must be"):
        log_mel(S=np.ones((100, 10), np.float32), sr=SR)
    with pytest.raises(ParameterError, match="NaN"):
        log_mel(np.full(1000, np.nan, np.float32), sr=SR)
    with pytest.raises(ParameterError, match="sr/2"):
        cqt(y, sr=SR, n_bins=120)
