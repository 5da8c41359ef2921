"""An inaudible audio watermark carrying a 16-bit payload, detected without the original.

Method (spread spectrum on STFT band energies, measured in docs/provenance.md):

* The audio is mixed to mono and resampled to 16 kHz; an STFT (512-point sqrt-Hann windows, hop 256 = 16 ms)
  is cut into 105 bands of 62.5 Hz from 94 Hz to 6.66 kHz. Each (frame, band) tile is one *chip*. Keeping
  the mark below 7 kHz lets it survive resampling to 16 kHz and MP3's treatment of the upper spectrum.
* A keyed pseudo-random layout assigns every tile of a 64-frame (1.024 s) period a sign and a role: half the
  tiles are synchronisation chips, the rest carry the 24 code bits (16 payload bits + CRC-8), each bit spread
  over 140 tiles per period. The period repeats through the file, so any 3 s excerpt holds almost three copies.
* Embedding multiplies the magnitudes of each tile by ``exp(±a_i)`` (phase untouched). The strength is
  signal-adaptive: ``a_i`` grows as the tile gets quieter (``a_i ∝ (E_i / mean E)^-1``, capped, zero below
  FLOOR), which spends the energy budget where it buys the most detection per unit of mark energy. It is
  *perceptually shaped*: in every 16 ms frame and Bark band the mark's power stays MASK_MARGIN_DB under the
  host's masking threshold by the model of :mod:`tunesmith.provenance.masking` (the one the listening check
  uses), so within a band it goes mostly to the quiet tiles between partials. The budget is the
  mark-to-signal ratio :data:`TARGET_SNR_DB`; no tile changes by more than ±MAX_LOG_GAIN or its masking limit,
  and what a tile at its limit cannot take goes to the tiles with headroom (louder, well-masked ones).
* Detection needs no original: log band energies are high-passed in time and frequency-normalised, reduced
  to their signs (robust to the host's heavy-tailed fluctuations), weighted by the strength the embedder
  would have used, masking limits included (estimated from the received audio; tiles near the estimated
  noise floor are left out), folded over the period and correlated with the sync pattern and with each code
  bit's chips at every frame offset and four sub-frame offsets. The statistic is the sync correlation plus the
  code bits' absolute correlations (each bit read as it fits best: the payload's chips count as evidence too);
  the score is the best statistic's robust z-score against all the others. The payload is read at the winning
  offset (with a one-bit Chase repair against the CRC, else the maximum-likelihood code word, not marked valid).
  Detected: score >= 5.5, or >= 4.5 with a payload that passes the CRC.

Gain changes cancel in the log domain, noise and MP3 blur only a fraction of the chips, and cropping only
shifts the period, which the offset search recovers. The key is public in an open-source deployment: the mark
identifies Tunesmith output to anyone who asks, it is not a secret.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import soxr
from scipy import fft as sfft

from tunesmith.errors import ParameterError
from tunesmith.provenance.masking import bark_bands, perceptual_threshold

DEFAULT_KEY = "tunesmith-watermark-v1"
PAYLOAD_BITS = 16
CRC_BITS = 8
CODE_BITS = PAYLOAD_BITS + CRC_BITS
TARGET_SNR_DB = 36.0  # mark-to-signal ratio the embedder aims at (the goal is >= 35 dB)
DETECTION_THRESHOLD = 5.5  # robust z-score of the sync correlation; calibrated by `tunesmith evaluate watermark`
CONFIRMED_THRESHOLD = 4.5  # a lower score also counts when the payload passes its CRC (random words: ~2 %)

WORK_SR = 16_000
N_FFT = 512
HOP = N_FFT // 2
LOW_BIN = 3  # 94 Hz
BAND_BINS = 2  # 62.5 Hz bands
N_BANDS = 105  # up to bin 213 = 6.66 kHz
HIGH_BIN = LOW_BIN + N_BANDS * BAND_BINS
PERIOD = 64  # frames (1.024 s)
SYNC_SHARE = 0.5
GAMMA = 1.0  # strength ∝ (tile energy / mean)^-GAMMA
CAP = 64.0  # largest strength relative to a tile of mean energy
FLOOR = 1e-6  # tiles quieter than this (relative to the mean) carry no mark
NOISE_QUANTILE = 0.1  # the detector's noise floor estimate: this quantile of the tile energies ...
NOISE_MARGIN = 10.0  # ... times this; quieter tiles are not read
MAX_LOG_GAIN = 0.6  # no tile changes by more than ±5.2 dB (and none by more than its masking limit)
MASK_MARGIN_DB = 3.0  # the mark stays this far under the perceptual masking threshold of every (frame, Bark band)
DETREND_FRAMES = 5
SUB_OFFSETS = 4
CHASE_BITS = 4
MIN_SR = 8_000
_WINDOW = np.sqrt(np.hanning(N_FFT + 1)[:-1]).astype(np.float32)
_EPS = 1e-12
_BARK = bark_bands(WORK_SR, N_FFT, float(np.sum(_WINDOW.astype(np.float64) ** 2)))
_TILE_BARK = (_BARK.band_of_bin[LOW_BIN:HIGH_BIN:BAND_BINS], _BARK.band_of_bin[LOW_BIN + 1:HIGH_BIN:BAND_BINS])
_BANDS = np.arange(len(_BARK.counts))
_TILE_IN_BAND = ((_BANDS[None, :] == _TILE_BARK[0][:, None])  # (tiles, Bark bands): 1 where a tile touches a band
                 | (_BANDS[None, :] == _TILE_BARK[1][:, None])).astype(np.float32)


@dataclass(frozen=True)
class Detection:
    """What the detector found: `detected` when `score` >= `threshold`, or >= CONFIRMED_THRESHOLD with a payload
    that passes its CRC (a second, independent check); the payload is read either way."""

    detected: bool
    score: float
    payload: int | None
    payload_valid: bool
    threshold: float

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------ code words


def crc8(data: bytes) -> int:
    """CRC-8 (polynomial 0x07, init 0)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def check_payload(payload: object) -> int:
    """The payload as an int in 0..65535, or ParameterError."""
    if isinstance(payload, bool) or not isinstance(payload, int | np.integer) or not 0 <= payload < 2**PAYLOAD_BITS:
        raise ParameterError(f"watermark payload must be an integer 0..{2**PAYLOAD_BITS - 1}, got {payload!r}",
                             field="payload")
    return int(payload)


def encode_payload(payload: int) -> np.ndarray:
    """24 code bits (0/1): the 16 payload bits, most significant first, then their CRC-8."""
    payload = check_payload(payload)
    word = (payload << CRC_BITS) | crc8(payload.to_bytes(2, "big"))
    return np.array([(word >> (CODE_BITS - 1 - i)) & 1 for i in range(CODE_BITS)], dtype=np.int8)


def decode_bits(bits: np.ndarray) -> tuple[int, bool]:
    """(payload, CRC matches) of 24 code bits."""
    word = int("".join(str(int(b)) for b in bits), 2)
    payload = word >> CRC_BITS
    return payload, crc8(payload.to_bytes(2, "big")) == word & 0xFF


# ----------------------------------------------------------------------------------------------- layout


@lru_cache(maxsize=8)
def _layout(key: str) -> tuple[np.ndarray, np.ndarray]:
    """(sign, role) of each (frame in period, band): role -1 is sync, 0..23 a code bit."""
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    sign = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(PERIOD, N_BANDS))
    role = np.full((PERIOD, N_BANDS), -1, dtype=np.int64)
    cells = rng.permutation(PERIOD * N_BANDS)
    data = cells[int(len(cells) * SYNC_SHARE):]
    role.flat[data] = np.arange(len(data)) % CODE_BITS
    sign.setflags(write=False)
    role.setflags(write=False)
    return sign, role


@lru_cache(maxsize=8)
def _patterns(key: str) -> np.ndarray:
    """Conjugate spectra over the period (axis 1) of the sync pattern (row 0) and of each code bit's chips
    (rows 1..24): what the detector correlates the folded chips with, at every frame offset at once."""
    sign, role = _layout(key)
    rows = [np.where(role < 0, sign, 0.0)] + [np.where(role == bit, sign, 0.0) for bit in range(CODE_BITS)]
    spectra = np.conj(sfft.rfft(np.stack(rows).astype(np.float32), axis=1, workers=1)).astype(np.complex64)
    spectra.setflags(write=False)
    return spectra


_BYTE_SIGNS = (((np.arange(256)[:, None] >> np.arange(7, -1, -1)[None, :]) & 1) * 2 - 1).astype(np.float32)


@lru_cache(maxsize=1)
def _crc_of_bytes() -> tuple[np.ndarray, np.ndarray]:
    """CRC-8 of (h, 0) for every high byte h and of (0, l) for every low byte l: the CRC (initial value 0) is
    linear, so the CRC of a payload is crc_high[h] ^ crc_low[l]."""
    return (np.array([crc8(bytes([h, 0])) for h in range(256)]),
            np.array([crc8(bytes([0, low])) for low in range(256)]))


def ml_payload(soft: np.ndarray) -> int:
    """The payload whose code word (payload + CRC) correlates best with the 24 soft code bits: maximum-likelihood
    decoding over all 65536 code words, 256 x 256 at once (each byte's and the CRC's fit looked up)."""
    soft = np.asarray(soft, dtype=np.float32)
    high_fit, low_fit, crc_fit = (_BYTE_SIGNS @ soft[i:i + 8] for i in (0, 8, 16))
    crc_high, crc_low = _crc_of_bytes()
    fit = high_fit[:, None] + low_fit[None, :] + crc_fit[crc_high[:, None] ^ crc_low[None, :]]
    return int(np.argmax(fit))  # = high * 256 + low


# --------------------------------------------------------------------------------------------- analysis


def _check_audio(y: object, sr: object) -> np.ndarray:
    if isinstance(sr, bool) or not isinstance(sr, int | np.integer) or sr < MIN_SR:
        raise ParameterError(f"sr must be an integer sample rate >= {MIN_SR} Hz, got {sr!r}", field="sr")
    y = np.asarray(y)
    if y.ndim not in (1, 2) or y.shape[-1] == 0 or not np.issubdtype(y.dtype, np.floating):
        raise ParameterError(f"y must be float audio shaped (n,) or (channels, n), got {y.dtype} {y.shape}",
                             field="y")
    if not np.isfinite(np.sum(y, dtype=np.float64)):  # one pass; any NaN or inf makes the sum non-finite
        raise ParameterError("y contains NaN or infinite samples", field="y")
    return y


def _mono16(y: np.ndarray, sr: int, quality: str = "HQ") -> np.ndarray:
    if y.ndim == 1:
        mono = y.astype(np.float32, copy=False)
    else:  # a matrix-vector product: much faster than y.mean(axis=0)
        mono = np.full(y.shape[0], 1.0 / y.shape[0], dtype=np.float32) @ y.astype(np.float32, copy=False)
    return mono if sr == WORK_SR else soxr.resample(mono, sr, WORK_SR, quality=quality).astype(np.float32, copy=False)


def _stft(y: np.ndarray, offset: int = 0) -> np.ndarray:
    y = y[offset:]
    frames = 1 + (len(y) - N_FFT) // HOP
    if frames <= 0:
        return np.zeros((0, N_FFT // 2 + 1), dtype=np.complex64)
    windows = np.lib.stride_tricks.sliding_window_view(y, N_FFT)[::HOP][:frames]
    return sfft.rfft(windows * _WINDOW, axis=1, workers=1)


def _istft(spec: np.ndarray, n: int) -> np.ndarray:
    frames = sfft.irfft(spec, N_FFT, axis=1, workers=1).astype(np.float32) * _WINDOW
    count = frames.shape[0]
    out = np.zeros((count + 1) * HOP, dtype=np.float32)
    out[: count * HOP] += frames[:, :HOP].reshape(-1)
    out[HOP:] += frames[:, HOP:].reshape(-1)
    return out[:n] if len(out) >= n else np.pad(out, (0, n - len(out)))


def _band_energy(spec: np.ndarray) -> np.ndarray:
    band = spec[:, LOW_BIN:HIGH_BIN]
    power = band.real ** 2 + band.imag ** 2
    total = power[:, 0::BAND_BINS].copy()
    for k in range(1, BAND_BINS):  # adding strided columns beats a reduce over a tiny last axis
        total += power[:, k::BAND_BINS]
    return total


def _tile_limits(spec: np.ndarray, energy: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """The largest |log gain| of each tile that keeps the mark MASK_MARGIN_DB under the perceptual masking
    threshold (tunesmith.provenance.masking) of the host in every (frame, Bark band): a tile with gain a adds
    a² x its energy to its band's mark power, so within a band the gains keep the shape of ``strength`` (more
    in the quiet tiles between partials) at the scale where the band's mark power meets the threshold. A tile
    straddling two bands counts in both. A frame's mark spreads over half of the frames before and after it,
    so a frame takes the lowest threshold of the three (no mark ahead of an onset or after an offset).
    At most MAX_LOG_GAIN."""
    power = spec.real.astype(np.float32) ** 2 + spec.imag.astype(np.float32) ** 2
    own, _ = perceptual_threshold(power, _BARK)
    threshold = own.copy()
    threshold[1:] = np.minimum(threshold[1:], own[:-1])
    threshold[:-1] = np.minimum(threshold[:-1], own[1:])
    load = (energy * strength * strength) @ _TILE_IN_BAND  # each band's mark power at unit scale
    scale = np.sqrt(threshold / (load + _EPS)) * 10 ** (-MASK_MARGIN_DB / 20)
    tile_scale = np.minimum(scale[:, _TILE_BARK[0]], scale[:, _TILE_BARK[1]])
    return np.minimum(tile_scale * strength, MAX_LOG_GAIN).astype(np.float32)


def _strength(energy: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """Relative mark strength of each tile: larger in quieter tiles, capped, zero in near-silence (below FLOOR
    times the mean tile, or below ``floor``)."""
    mean = float(energy.mean()) + _EPS
    relative = energy * np.float32(1.0 / mean) + np.float32(_EPS)
    weight = np.minimum(np.float32(1.0) / relative if GAMMA == 1.0 else relative ** -GAMMA, CAP)
    weight[energy < max(FLOOR * mean, floor)] = 0.0
    return weight.astype(np.float32)


def _noise_floor(energy: np.ndarray) -> float:
    """The level under which the detector ignores tiles: NOISE_MARGIN times the NOISE_QUANTILE of the tile
    energies. In clean audio that is near the quietest marked tiles; after noise is added, the quietest tiles
    (where the mark was) are the noise, and reading them would only add noise to the correlation."""
    flat = energy.reshape(-1)
    k = int(NOISE_QUANTILE * (flat.size - 1))
    return NOISE_MARGIN * float(np.partition(flat, k)[k])


def _detrend(logs: np.ndarray) -> np.ndarray:
    """Log energies minus their moving average over time (per band) and their mean over bands (per frame)."""
    k = DETREND_FRAMES
    padded = np.pad(logs, ((k // 2, k // 2), (0, 0)), mode="edge")
    csum = np.cumsum(np.vstack([np.zeros((1, logs.shape[1]), dtype=logs.dtype), padded]), axis=0)
    out = logs - (csum[k:] - csum[:-k]) / k
    return out - out.mean(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------- embed


def watermark_audio(y: np.ndarray, sr: int, payload: int, *, key: str = DEFAULT_KEY,
                    snr_db: float = TARGET_SNR_DB) -> np.ndarray:
    """`y` ((n,) or (channels, n) float) with the watermark carrying `payload` (0..65535) added.

    The mark-to-signal ratio is `snr_db` (default 36 dB), or higher when the host's masking threshold cannot
    hold that much mark (see :func:`_tile_limits`); every channel gets the same mark, so a mono mix-down keeps
    it. Audio shorter than one STFT window or silent is returned unchanged (there is nothing to hide in).
    """
    y = _check_audio(y, sr)
    bits = encode_payload(payload)
    mono = _mono16(y, sr)
    n = len(mono)
    spec = _stft(np.pad(mono, (0, N_FFT)))
    frames = spec.shape[0]
    signal_power = float(np.mean(np.square(y, dtype=np.float64)))
    if n < N_FFT or frames == 0 or signal_power <= 0.0:
        return y.copy()
    sign, role = _layout(key)
    values = np.where(role < 0, 1.0, np.where(bits[np.maximum(role, 0)] > 0, 1.0, -1.0)) * sign
    tiled = np.tile(values, (frames // PERIOD + 1, 1))[:frames].astype(np.float32)
    energy = _band_energy(spec)
    log_gain = _strength(energy) * tiled
    # the level that would give snr_db without the per-tile limit, estimated in the tile domain ...
    if not np.any(log_gain):
        return y.copy()
    budget = signal_power * 10 ** (-snr_db / 10) / _tile_mark_power(spec, energy, log_gain, n)
    # ... and the level that spends the same budget when no tile changes by more than MAX_LOG_GAIN
    log_gain, spent = _limited(log_gain, energy, budget, _tile_limits(spec, energy, np.abs(log_gain)))
    mark = _tile_mark(spec, log_gain, n, sr, y.shape[-1])
    mark_power = float(np.mean(np.square(mark, dtype=np.float64)))
    if mark_power <= 0.0:
        return y.copy()
    level = np.sqrt(signal_power * 10 ** (-snr_db / 10) / mark_power)  # exact mark-to-signal ratio (about 1) ...
    if not spent:  # ... unless the masking limits held the mark below its budget
        level = min(level, 1.0)
    out = y + (level * mark).astype(y.dtype, copy=False)
    return out.astype(y.dtype, copy=False)


def _tile_mark(spec: np.ndarray, log_gain: np.ndarray, n: int, sr: int = WORK_SR,
               length: int | None = None) -> np.ndarray:
    """The mark (at ``sr``, ``length`` samples) that changes each tile's magnitudes by ``log_gain``."""
    unit = np.zeros_like(spec)
    unit[:, LOW_BIN:HIGH_BIN] = spec[:, LOW_BIN:HIGH_BIN] * np.repeat(log_gain, BAND_BINS, axis=1)
    mark = _istft(unit, n + N_FFT)[:n]
    if sr != WORK_SR:
        mark = soxr.resample(mark, WORK_SR, sr).astype(np.float32, copy=False)
    length = len(mark) if length is None else length
    return mark[:length] if len(mark) >= length else np.pad(mark, (0, length - len(mark)))


def _tile_mark_power(spec: np.ndarray, energy: np.ndarray, log_gain: np.ndarray, n: int) -> float:
    """Mean power of the mark at unit level (at 16 kHz: resampling the band-limited mark keeps its power) per
    unit of its tile-domain power (sum of energy x gain²)."""
    power = float(np.mean(np.square(_tile_mark(spec, log_gain, n), dtype=np.float64)))
    return power / max(float(np.sum(energy * np.square(log_gain))), _EPS)


def _limited(log_gain: np.ndarray, energy: np.ndarray, budget: float,
             limit: np.ndarray | float = MAX_LOG_GAIN) -> tuple[np.ndarray, bool]:
    """(``level * log_gain`` with each tile limited to ±``limit``, whether the budget was spent): the level is
    chosen so that the tile-domain mark power, sum of energy x gain², equals ``budget`` (to within 1 %): the
    energy a tile at its limit cannot take goes to the tiles with headroom instead of being lost. When every
    tile at its limit holds less than the budget, that is the mark (and the budget is not spent)."""
    magnitude = np.abs(log_gain)
    active = magnitude > 0
    m, e = magnitude[active], energy[active].astype(np.float32)
    top = np.broadcast_to(np.asarray(limit, dtype=np.float32), log_gain.shape)[active]
    unlimited = np.sqrt(budget / max(float(np.dot(e, m * m)), _EPS))  # the level if no tile were limited

    def power(level: float) -> float:
        gain = np.minimum(np.float32(level) * m, top)
        return float(np.dot(e, gain * gain))

    spent = True
    if power(unlimited) >= budget * 0.99:
        level = unlimited
    else:
        highest = float(np.max(top / m)) if m.size else unlimited  # the level that puts every tile at its limit
        if power(highest) <= budget:
            level, spent = highest, False
        else:  # bisection on log(level) between the unlimited level and that one
            low, high = np.log(unlimited), np.log(highest)
            for _ in range(20):
                middle = 0.5 * (low + high)
                low, high = (middle, high) if power(float(np.exp(middle))) < budget else (low, middle)
            level = float(np.exp(low))
    return np.sign(log_gain) * np.minimum(level * magnitude, limit), spent


# --------------------------------------------------------------------------------------------- detect


def detect_watermark(y: np.ndarray, sr: int, *, key: str = DEFAULT_KEY,
                     threshold: float = DETECTION_THRESHOLD) -> Detection:
    """Look for the watermark in `y` without the original; the payload is read at the best offset."""
    y = _check_audio(y, sr)
    mono = _mono16(y, sr, quality="MQ")  # the mark lives below 7 kHz: medium quality resampling is plenty here
    patterns = _patterns(key)
    flip = (-np.arange(PERIOD)) % PERIOD
    best: tuple[float, np.ndarray] | None = None
    scores = []
    limits = None
    for sub in range(SUB_OFFSETS):
        spec = _stft(mono, sub * HOP // SUB_OFFSETS)
        if spec.shape[0] < DETREND_FRAMES:
            continue
        energy = _band_energy(spec)
        detrended = _detrend(np.log(energy + _EPS))
        strength = _strength(energy, _noise_floor(energy))
        if limits is None:  # the masking limits move little within a hop: computed once, at the first offset
            limits = _tile_limits(spec, energy, strength)
        chips = np.sign(detrended) * _expected_strength(energy, strength, limits[: energy.shape[0]])
        periods = -(-chips.shape[0] // PERIOD)
        folded = np.zeros((periods * PERIOD, N_BANDS), dtype=np.float32)
        folded[: chips.shape[0]] = chips
        folded = folded.reshape(periods, PERIOD, N_BANDS).sum(axis=0)  # folded[k]: frames t with t % P == k
        # corr[r, o] = sum over k, b of folded[k, b] * pattern_r[(k + o) % P, b]  (r: sync, then each code bit)
        spectrum = sfft.rfft(folded, axis=0, workers=1)
        corr = sfft.irfft(np.einsum("fb,rfb->rf", spectrum, patterns), PERIOD, axis=1, workers=1)[:, flip]
        # the statistic: sync correlation + the code bits' |soft values| (each bit read as it fits best)
        total = corr[0] + np.abs(corr[1:]).sum(axis=0)
        scores.append(total)
        offset = int(np.argmax(total))
        if best is None or total[offset] > best[0]:
            best = (float(total[offset]), corr[1:, offset])
    if best is None:
        return Detection(False, 0.0, None, False, threshold)
    everything = np.concatenate(scores)
    median = float(np.median(everything))
    spread = float(np.median(np.abs(everything - median))) * 1.4826 + _EPS
    score = (best[0] - median) / spread
    payload, valid = soft_decode(best[1])
    detected = score >= threshold or (valid and score >= min(threshold, CONFIRMED_THRESHOLD))
    return Detection(bool(detected), round(float(score), 3), payload, valid, threshold)


def _expected_strength(energy: np.ndarray, strength: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """The |log gain| the embedder would have given each tile of this (received) audio: its adaptive strength
    (without the tiles at the estimated noise floor), limited by the masking threshold, at the level that spends
    the mark-to-signal budget. The detector weights each chip by it (a matched filter)."""
    # tile-domain budget: with sqrt-Hann windows at 50 % overlap, sum of one-sided |X|² = N_FFT / 2 x sum of x²
    budget = float(np.sum(energy)) * 10 ** (-TARGET_SNR_DB / 10)
    gain, _ = _limited(strength, energy, budget, limits)
    return gain.astype(np.float32)


def soft_decode(soft: np.ndarray) -> tuple[int, bool]:
    """(payload, CRC matches) from the 24 soft code bits. When the hard decision fails the CRC, each of the
    :data:`CHASE_BITS` least reliable bits is flipped in turn and the first word passing the CRC is taken
    (a single-error Chase decoder: it repairs the commonest failure, one weak bit, and raises the chance
    that a random word passes the CRC only from 1/256 to about 5/256). When that fails too, the payload is the
    best guess of :func:`ml_payload` (usually right in short excerpts that misread two or three bits), marked
    not valid."""
    bits = (soft > 0).astype(np.int8)
    payload, valid = decode_bits(bits)
    if valid:
        return payload, True
    for weakest in np.argsort(np.abs(soft))[:CHASE_BITS]:
        trial = bits.copy()
        trial[weakest] ^= 1
        repaired, ok = decode_bits(trial)
        if ok:
            return repaired, True
    return ml_payload(soft), False
