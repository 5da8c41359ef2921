"""The audio watermark: payload round trip, robustness to each attack, no false alarms, imperceptibility."""

from __future__ import annotations

import numpy as np
import pytest

from tunesmith.errors import ParameterError
from tunesmith.evaluate.watermark import ATTACKS, attack
from tunesmith.provenance.masking import mark_to_mask, summarise
from tunesmith.provenance.watermark import (
    DETECTION_THRESHOLD,
    MAX_LOG_GAIN,
    decode_bits,
    detect_watermark,
    encode_payload,
    ml_payload,
    soft_decode,
    watermark_audio,
)
from tunesmith.symbolic.score import Note, Part, Score

SR = 44_100


def _piece(program: int, seed: int) -> Score:
    """Eight seconds of four-voice chords and a melody, different for each seed."""
    rng = np.random.default_rng(seed)
    roots = rng.choice([48, 50, 53, 55, 57], size=8)
    chords = [Note(int(r) + i, float(b), 1.0, 70) for b, r in enumerate(roots) for i in (0, 4, 7, 12)]
    melody = [Note(int(72 + rng.integers(-5, 6)), b * 0.5, 0.5, 90) for b in range(16)]
    return Score(parts=[Part(name="chords", notes=chords, program=program),
                        Part(name="melody", notes=melody, program=program)], tempo=60.0)


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    """Three rendered clips (piano, organ, strings) of 5 s, stereo 44.1 kHz."""
    from tunesmith.symbolic.render import get_renderer

    renderer = get_renderer(SR)
    return [renderer.render(_piece(program, seed))[:, : 5 * SR] for seed, program in enumerate((0, 19, 48))]


@pytest.fixture(scope="module")
def marked(clips) -> list[tuple[np.ndarray, int]]:
    payloads = (0x0000, 0xA5C3, 0xFFFF)
    return [(watermark_audio(y, SR, p), p) for y, p in zip(clips, payloads, strict=True)]


def test_code_words_round_trip():
    for payload in (0, 1, 0x1234, 0xFFFF):
        bits = encode_payload(payload)
        assert len(bits) == 24 and decode_bits(bits) == (payload, True)
        bits[3] ^= 1
        assert decode_bits(bits)[1] is False
    for bad in (-1, 1 << 16, 1.5, True, "7"):
        with pytest.raises(ParameterError):
            encode_payload(bad)


def test_payload_round_trip_and_imperceptibility(clips, marked):
    for y, (yw, payload) in zip(clips, marked, strict=True):
        mark = (yw - y).astype(np.float64)
        snr = 10 * np.log10(np.sum(y.astype(np.float64) ** 2) / np.sum(mark ** 2))
        assert snr >= 35.0
        found = detect_watermark(yw, SR)
        assert found.detected and found.payload == payload and found.payload_valid


@pytest.mark.parametrize("name", ATTACKS)
def test_survives_each_attack(marked, name):
    for index, (yw, payload) in enumerate(marked):
        attacked = attack(name, yw, SR, np.random.default_rng([index, 1]))
        found = detect_watermark(attacked, SR)
        assert found.detected, (name, index, found)
        assert found.payload == payload, (name, index, found)


@pytest.mark.parametrize("name", ["none", "mp3_128k", "crop_3s", "all"])
def test_unmarked_audio_is_not_detected(clips, name):
    rng = np.random.default_rng(5)
    noise = (0.05 * rng.standard_normal((2, 5 * SR))).astype(np.float32)
    for index, y in enumerate([*clips, noise]):
        found = detect_watermark(attack(name, y, SR, np.random.default_rng([index, 2])), SR)
        assert not found.detected and found.score < DETECTION_THRESHOLD, (name, index, found)


def test_mono_16k_and_the_key(clips):
    from tunesmith.audio.dsp import resample

    mono = resample(clips[1].mean(axis=0), orig_sr=SR, target_sr=16_000)
    marked = watermark_audio(mono, 16_000, 0x0BAD)
    assert marked.shape == mono.shape and marked.dtype == mono.dtype
    found = detect_watermark(marked, 16_000)
    assert found.detected and found.payload == 0x0BAD
    assert not detect_watermark(marked, 16_000, key="someone else's key").detected


def test_bad_and_degenerate_input():
    with pytest.raises(ParameterError):
        watermark_audio(np.full(SR, np.nan, dtype=np.float32), SR, 1)
    with pytest.raises(ParameterError):
        watermark_audio(np.zeros(SR, dtype=np.float32), 4000, 1)
    with pytest.raises(ParameterError):
        detect_watermark(np.zeros((2, 3, 4), dtype=np.float32), SR)
    silence = np.zeros(SR, dtype=np.float32)
    assert np.array_equal(watermark_audio(silence, SR, 1), silence)
    short = np.ones(100, dtype=np.float32) * 0.1
    assert np.array_equal(watermark_audio(short, SR, 1), short)
    assert not detect_watermark(short, SR).detected


def test_soft_decoding_repairs_weak_bits():
    rng = np.random.default_rng(3)
    for payload in (0, 0x1234, 0xBEEF, 0xFFFF):
        soft = (2.0 * encode_payload(payload) - 1.0) * rng.uniform(0.8, 1.2, 24)
        assert ml_payload(soft) == payload and soft_decode(soft) == (payload, True)
        weak = soft.copy()
        weak[[2, 9, 20]] *= -0.3  # three bits misread, weakly: beyond the one-bit repair, not beyond the code
        assert decode_bits((weak > 0).astype(np.int8))[1] is False
        assert ml_payload(weak) == payload
        found, valid = soft_decode(weak)
        assert found == payload and valid is False  # the best guess, not vouched for by the CRC


def test_the_budget_is_spent_within_the_per_tile_limit(clips):
    """Every music clip gets exactly the mark-to-signal ratio asked for (before the per-tile limit, a sparse clip
    got less: one quiet tile at the limit held the whole mark down), and no tile's gain exceeds its limit."""
    from tunesmith.provenance.watermark import _limited

    rng = np.random.default_rng(4)
    for y in clips:
        marked = watermark_audio(y, SR, 0x5A5A)
        snr = 10 * np.log10(np.sum(y.astype(np.float64) ** 2) / np.sum((marked - y).astype(np.float64) ** 2))
        assert abs(snr - 36.0) < 0.01
    energy = rng.exponential(size=(50, 105)) ** 4  # heavy-tailed tile energies: many quiet tiles
    strength = np.minimum(energy ** -0.5, 8.0) * rng.choice([-1.0, 1.0], size=energy.shape)
    budget = 0.05 * float(np.sum(energy * strength ** 2))
    limited, spent = _limited(strength, energy, budget)
    assert spent and np.abs(limited).max() <= MAX_LOG_GAIN + 1e-6
    assert np.array_equal(np.sign(limited), np.sign(strength))
    assert abs(float(np.sum(energy * limited ** 2)) / budget - 1.0) < 0.02
    # per-tile limits (the masking threshold's): none is exceeded; when they cannot hold the budget, all are full
    limit = rng.uniform(0.0, 0.05, size=energy.shape).astype(np.float32)
    capped, spent = _limited(strength, energy, budget, limit)
    assert np.all(np.abs(capped) <= limit + 1e-7)
    assert not spent and np.allclose(np.abs(capped), limit, atol=1e-6)


def _embedder_view(y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """(power, threshold) per (16 ms frame, Bark band) of ``y`` in the embedder's own STFT and model."""
    from tunesmith.provenance import watermark as wm
    from tunesmith.provenance.masking import perceptual_threshold

    power = np.abs(wm._stft(np.pad(wm._mono16(y, sr), (0, wm.N_FFT)))) ** 2
    threshold, band_power = perceptual_threshold(power, wm._BARK)
    return band_power, threshold


def test_the_mark_stays_under_the_embedders_masking_threshold():
    """A loud low chord over a faint hiss in 3-6 kHz: an unshaped mark (strength ∝ energy^-1/2) would pile into
    the faint band; the shaped one stays under the embedder's own threshold in (almost) every frame and band,
    with its budget moved to where the chord masks it."""
    from tunesmith.provenance.watermark import MASK_MARGIN_DB

    rng = np.random.default_rng(8)
    n = 4 * SR
    t = np.arange(n) / SR
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) * (1 + 0.3 * np.sin(2 * np.pi * 0.5 * t)) for f in (220, 277, 330))
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    spectrum[(freqs < 3000) | (freqs > 6000)] = 0
    hiss = np.fft.irfft(spectrum, n)
    y = (chord + 3e-4 * hiss / hiss.std()).astype(np.float32)
    marked = watermark_audio(y, SR, 0x2468)
    _, threshold = _embedder_view(y, SR)
    mark, _ = _embedder_view(marked - y, SR)
    frames = slice(2, -2)  # the ends of the clip (window edges) aside
    mmr = 10 * np.log10((mark[frames] + 1e-30) / (threshold[frames] + 1e-30))
    assert np.mean(mmr > 0) < 0.01 and np.quantile(mmr, 0.99) < 0.0
    assert np.median(mmr[mark[frames] > 1e-20]) < -MASK_MARGIN_DB / 2
    # the faint high band gets no more than its threshold ...
    from tunesmith.provenance.masking import hz_to_bark

    high = slice(int(hz_to_bark(3500.0)) + 1, int(hz_to_bark(5500.0)))
    assert np.all(mark[frames, high] <= threshold[frames, high] * 1.3)
    # ... and the whole budget is still spent (where the chord masks the mark), found by the detector
    snr = 10 * np.log10(np.sum(y.astype(np.float64) ** 2) / np.sum((marked - y).astype(np.float64) ** 2))
    assert abs(snr - 36.0) < 0.05
    found = detect_watermark(marked, SR)
    assert found.detected and found.payload == 0x2468


def test_masking_check_tells_a_masked_mark_from_an_audible_one(clips):
    y = clips[0]
    rng = np.random.default_rng(6)
    quiet = y + (1e-4 * y).astype(np.float32)  # the music itself 80 dB down: masked everywhere
    loud = y + (rng.standard_normal(y.shape) * np.sqrt(np.mean(y ** 2))).astype(np.float32)  # noise at 0 dB
    masked, audible = mark_to_mask(y, quiet, SR), mark_to_mask(y, loud, SR)
    assert masked.tiles > 100 and masked.share_above == 0.0 and masked.mmr_db.max() < -20
    assert audible.share_above > 0.5 and audible.tonal_share_above > 0.9
    assert audible.tonal_share_above >= audible.share_above  # the tonal model is the stricter one
    report = summarise([masked, audible])
    assert report["tiles"] == masked.tiles + audible.tiles
    assert report["worst_clip_share"] == round(audible.share_above, 5)
    assert report["tonal"]["share_above_noise_masker_threshold"] <= report["tonal"]["share_above_threshold"]
    with pytest.raises(ParameterError):
        mark_to_mask(y, y[:, :100], SR)


def test_perceptual_model_tonality_and_threshold_in_quiet():
    """A tone masks less than noise of the same power (MPEG-1 model 1's tonality), and a mark below the threshold of
    hearing is inaudible even where the host is silent."""
    from tunesmith.provenance.masking import _power_spectrum, bark_bands, perceptual_threshold, tonality

    rng = np.random.default_rng(9)
    t = np.arange(2 * SR) / SR
    tone = 0.1 * np.sin(2 * np.pi * 1000 * t)
    noise = rng.standard_normal(len(t))
    spectrum = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(len(t), 1 / SR)
    spectrum[(freqs < 920) | (freqs > 1080)] = 0  # noise in the tone's critical band, at the same power
    noise = np.fft.irfft(spectrum, len(t))
    noise *= tone.std() / noise.std()
    bark = bark_bands(SR)
    band = int(np.floor(13.0 * np.arctan(0.76) + 3.5 * np.arctan((1000 / 7500) ** 2)))
    tone_alpha = tonality(_power_spectrum(tone), bark)[:, band]
    noise_alpha = tonality(_power_spectrum(noise), bark)[:, band]
    assert np.median(tone_alpha) > 0.6 and np.median(noise_alpha) < 0.2
    tone_thr = perceptual_threshold(_power_spectrum(tone), bark)[0][:, band]
    noise_thr = perceptual_threshold(_power_spectrum(noise), bark)[0][:, band]
    assert np.median(noise_thr) > 10 * np.median(tone_thr)  # about 14.5 + z - 5.5 dB apart
    # white noise at -110 dBFS on the tone: far from 1 kHz the tone masks nothing, but the noise is below the
    # threshold of hearing at any sane level (full scale = 96 dB SPL): only the tonal model calls it audible
    host = tone.astype(np.float32)
    faint = host + (10 ** (-110 / 20) * rng.standard_normal(len(t))).astype(np.float32)
    check = mark_to_mask(host, faint, SR)
    assert check.tiles > 100 and check.share_above == 0.0 and check.tonal_share_above > 0.3
