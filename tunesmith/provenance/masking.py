"""A reproducible stand-in for a listening check: is the watermark below the music's masking threshold?

Nobody can listen here, so the mark is compared with a simultaneous-masking model of the original. Two models
share the same steps (docs/provenance.md, "Listening check"):

1. a 2048-point Hann STFT of the mono mix at the file's rate (hop 1024, about 23 ms at 44.1 kHz), its power
   summed into critical bands of one Bark (Zwicker and Terhardt's Hz -> Bark formula), up to 24 Bark;
2. the band powers of the original spread over neighbouring bands with Schroeder's spreading function
   (15.81 + 7.5 (dz + 0.474) - 17.5 sqrt(1 + (dz + 0.474)²) dB);
3. lowered by an offset for the kind of masker:

* **perceptual** (the check the embedder is shaped by): each band's tonal share alpha by MPEG-1 psychoacoustic
  model 1's split into tonal and non-tonal maskers (a bin is tonal when it is a local maximum 7 dB above every
  bin from 2 bins to 86-517 Hz away, see :func:`tonality`), spread across bands with the masker energies as in
  MPEG-1 psychoacoustic model 2, sets Johnston's (1988) offset alpha (14.5 + z) + (1 - alpha) 5.5 dB; the
  threshold is then no lower than the absolute threshold of hearing (Terhardt's formula) at a playback level
  where a full-scale sine is 96 dB SPL (the level MPEG's models assume);
* **tonal** (the conservative bound kept from session 3): the tonal offset 14.5 + z dB everywhere, no threshold
  in quiet.

The mark-to-mask ratio (MMR) of a tile (frame x Bark band) is the mark's power (marked - original) over that
threshold, in dB; above 0 dB the model says the mark could be heard there. Neither model credits temporal
masking or the ear's averaging over the mark's 16 ms x 62.5 Hz pattern. It is a model, not a listener: it says
where to listen first, not that nobody will hear it. The same functions (:func:`bark_bands`,
:func:`perceptual_threshold`) give the watermark embedder its per-tile limits at its own STFT resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import fft as sfft

from tunesmith.errors import ParameterError
from tunesmith.plotting import pyplot, save_figure

N_FFT = 2048
HOP = 1024
MAX_BARK = 24
NOISE_OFFSET_DB = 5.5  # Johnston's offset for a noise-like masker
FULL_SCALE_DB_SPL = 96.0  # playback level of a full-scale sine for the threshold in quiet (as in MPEG's models)
SOUNDING_DB = 60.0  # frames within this many dB of the clip's loudest frame are judged
BARK_REGIONS = ((0, 5), (5, 10), (10, 15), (15, 20), (20, MAX_BARK))
_EPS = 1e-20


def hz_to_bark(f: np.ndarray | float) -> np.ndarray:
    """Critical-band rate in Bark (Zwicker and Terhardt 1980)."""
    f = np.asarray(f, dtype=np.float64)
    return 13.0 * np.arctan(0.00076 * f) + 3.5 * np.arctan((f / 7500.0) ** 2)


def threshold_in_quiet_db(f: np.ndarray | float) -> np.ndarray:
    """The absolute threshold of hearing in dB SPL (Terhardt 1979), evaluated from 20 Hz up."""
    khz = np.maximum(np.asarray(f, dtype=np.float64), 20.0) / 1000.0
    return 3.64 * khz ** -0.8 - 6.5 * np.exp(-0.6 * (khz - 3.3) ** 2) + 1e-3 * khz ** 4


@dataclass(frozen=True)
class BarkBands:
    """How the bins of one STFT (sample rate, FFT size, window) fall into one-Bark bands.

    ``matrix`` (bands, bins) is 0/1, ``counts`` the bins per band, ``band_of_bin`` each bin's band (-1 above the
    last), ``quiet`` each band's threshold in quiet (the lowest over its bins) in the STFT's own power units
    (|rfft(window * x)|²), where a full-scale sine sums to ``full_scale``."""

    matrix: np.ndarray
    counts: np.ndarray
    band_of_bin: np.ndarray
    quiet: np.ndarray
    full_scale: float
    reach: np.ndarray  # per bin: the neighbours (± bins) a tonal peak must exceed by 7 dB (MPEG-1 model 1)


@lru_cache(maxsize=8)
def bark_bands(sr: int, n_fft: int = N_FFT, window_power: float | None = None) -> BarkBands:
    """The one-Bark bands of an ``n_fft``-point STFT at ``sr`` whose window has sum of squares ``window_power``
    (default: a Hann window)."""
    if window_power is None:
        window_power = float(np.sum(np.hanning(n_fft) ** 2))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    z = np.floor(hz_to_bark(freqs)).astype(int)
    bands = min(MAX_BARK, int(z.max()) + 1)
    matrix = (z[None, :] == np.arange(bands)[:, None]).astype(np.float64)
    full_scale = n_fft * window_power / 4.0  # sum over the one-sided bins of a sine of amplitude 1
    quiet_bins = full_scale * 10 ** ((threshold_in_quiet_db(freqs) - FULL_SCALE_DB_SPL) / 10)
    quiet = np.array([quiet_bins[z == b].min() for b in range(bands)])
    band_of_bin = np.where(z < bands, z, -1)
    # model 1's neighbourhoods (Layer II, 1024 points at 44.1 kHz): ±2 bins below 2.7 kHz, ±3 to 5.5 kHz, ±6 to
    # 11 kHz, ±12 above, i.e. ±86, 129, 258, 517 Hz: kept in Hz (at least ±2 bins, a Hann window's main lobe)
    hz = np.select([freqs < 2756, freqs < 5512, freqs < 11025], [86.1, 129.2, 258.4], 516.8)
    reach = np.maximum(2, np.round(hz / (sr / n_fft))).astype(int)
    for array in (matrix, quiet, band_of_bin, reach):
        array.setflags(write=False)
    return BarkBands(matrix, matrix.sum(axis=1), band_of_bin, quiet, full_scale, reach)


@lru_cache(maxsize=4)
def _spreading(bands: int) -> np.ndarray:
    """(bands, bands) linear spreading: [i, j] is how much a masker in band j masks band i (Schroeder 1979)."""
    dz = np.arange(bands)[:, None] - np.arange(bands)[None, :] + 0.474
    return 10 ** ((15.81 + 7.5 * dz - 17.5 * np.sqrt(1.0 + dz * dz)) / 10)


def _tonal_offset_db(bands: int) -> np.ndarray:
    return 14.5 + (np.arange(bands) + 0.5)


def _power_spectrum(y: np.ndarray) -> np.ndarray:
    """(frames, bins) power of the check's STFT of a mono signal."""
    if len(y) < N_FFT:
        y = np.pad(y, (0, N_FFT - len(y)))
    frames = np.lib.stride_tricks.sliding_window_view(y, N_FFT)[::HOP]
    spectrum = sfft.rfft(frames * np.hanning(N_FFT), axis=1, workers=1)
    return spectrum.real ** 2 + spectrum.imag ** 2


def masking_threshold(band_power: np.ndarray) -> np.ndarray:
    """The conservative *tonal* masking threshold (frames x Bark bands) of a host's band powers: spread, then
    lowered by the tonal offset everywhere; no threshold in quiet."""
    bands = band_power.shape[1]
    return (band_power @ _spreading(bands).T) * 10 ** (-_tonal_offset_db(bands) / 10)


def tonality(power: np.ndarray, bark: BarkBands) -> np.ndarray:
    """The tonal share (0 noise-like .. 1 tonal) of every (frame, Bark band), by MPEG-1 psychoacoustic model 1's
    split into tonal and non-tonal maskers: a bin is a tonal peak when it is a local maximum at least 7 dB above
    every bin from 2 to ``bark.reach`` bins away on both sides; a peak and its two neighbours are tonal power,
    the rest of the band is not. Returned: the band's tonal power over its power."""
    db = 10 * np.log10(power.astype(np.float32) + np.float32(_EPS))
    bins = db.shape[1]
    peak = np.zeros(db.shape, dtype=bool)
    peak[:, 1:-1] = (db[:, 1:-1] > db[:, :-2]) & (db[:, 1:-1] >= db[:, 2:])
    for j in range(2, int(bark.reach.max()) + 1):
        near = bark.reach[j:bins - j] >= j  # bins whose neighbourhood reaches j
        prominent = (db[:, j:bins - j] - db[:, :bins - 2 * j] >= 7) & (db[:, j:bins - j] - db[:, 2 * j:] >= 7)
        peak[:, j:bins - j] &= prominent | ~near
        peak[:, :j] &= bark.reach[:j] < j  # too near the edge to be judged: not a peak
        peak[:, bins - j:] &= bark.reach[bins - j:] < j
    triple = power.copy()  # a peak's power with its two neighbours', counted in the peak's band
    triple[:, 1:] += power[:, :-1]
    triple[:, :-1] += power[:, 1:]
    tonal = np.where(peak, triple, 0.0)
    band_power = power @ bark.matrix.T
    return np.clip((tonal @ bark.matrix.T) / (band_power + _EPS), 0.0, 1.0)


def perceptual_threshold(power: np.ndarray, bark: BarkBands) -> tuple[np.ndarray, np.ndarray]:
    """(threshold, band power), both (frames, Bark bands), of a host's STFT power (frames, bins) in the
    STFT's own units: the *perceptual* model of the module docstring."""
    band_power = power @ bark.matrix.T
    bands = band_power.shape[1]
    spreading = _spreading(bands).T
    spread = band_power @ spreading
    # the tonality of the spread maskers: each band's coefficient weighted by its energy's share in the spread
    alpha = ((tonality(power, bark) * band_power) @ spreading) / (spread + _EPS)
    offset_db = alpha * _tonal_offset_db(bands) + (1.0 - alpha) * NOISE_OFFSET_DB
    return np.maximum(spread * 10 ** (-offset_db / 10), bark.quiet), band_power


@dataclass(frozen=True)
class MaskingCheck:
    """Mark-to-mask ratios (dB) of every judged tile (a sounding frame x Bark band) of one clip, by the
    perceptual model (``mmr_db``) and by the conservative tonal one (``tonal_mmr_db``)."""

    mmr_db: np.ndarray
    tonal_mmr_db: np.ndarray
    bark: np.ndarray  # each tile's Bark band
    tiles: int

    @property
    def share_above(self) -> float:
        """Share of judged tiles where the mark exceeds the perceptual masking threshold."""
        return float(np.mean(self.mmr_db > 0)) if self.tiles else 0.0

    @property
    def tonal_share_above(self) -> float:
        """Share of judged tiles where the mark exceeds the conservative tonal threshold."""
        return float(np.mean(self.tonal_mmr_db > 0)) if self.tiles else 0.0


def _mono(y: np.ndarray) -> np.ndarray:
    return (y.mean(axis=0) if y.ndim == 2 else y).astype(np.float64)


def mark_to_mask(original: np.ndarray, marked: np.ndarray, sr: int) -> MaskingCheck:
    """The mark-to-mask ratio of every tile (sounding frame x Bark band) of ``marked`` against ``original``.

    ``original`` and ``marked``: float audio of the same shape, (n,) or (channels, n). Any difference counts
    as the "mark": pass an MP3 decoded (aligned) to judge its coding noise the same way."""
    original, marked = np.asarray(original), np.asarray(marked)
    if original.shape != marked.shape or original.ndim not in (1, 2) or original.shape[-1] == 0:
        raise ParameterError(f"original and marked audio must have the same (n,) or (channels, n) shape, got "
                             f"{original.shape} and {marked.shape}", field="marked")
    mmr, tonal_mmr, judged = _mmr_maps(_mono(original), _mono(marked) - _mono(original), sr)
    bark = np.broadcast_to(np.arange(mmr.shape[1]), mmr.shape)[judged]
    return MaskingCheck(mmr_db=mmr[judged].astype(np.float32), tonal_mmr_db=tonal_mmr[judged].astype(np.float32),
                        bark=bark.astype(np.int8), tiles=int(judged.sum()))


def _mmr_maps(host: np.ndarray, mark: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(perceptual MMR, tonal MMR, judged) maps, each (frames, Bark bands), of a mono host and mark."""
    bark = bark_bands(sr)
    threshold, host_power = perceptual_threshold(_power_spectrum(host), bark)
    mark_power = _power_spectrum(mark) @ bark.matrix.T
    frame_power = host_power.sum(axis=1)
    sounding = frame_power > frame_power.max() * 10 ** (-SOUNDING_DB / 10) if frame_power.size else frame_power > 0
    judged = sounding[:, None] & (mark_power > _EPS)  # bands the difference does not reach at all are not judged
    mmr = 10 * np.log10((mark_power + _EPS) / (threshold + _EPS))
    tonal_mmr = 10 * np.log10((mark_power + _EPS) / (masking_threshold(host_power) + _EPS))
    return mmr, tonal_mmr, judged


def _model_figures(mmr: np.ndarray, bark: np.ndarray, shares: list[float]) -> dict[str, Any]:
    above = mmr[mmr > 0]

    def q(values: np.ndarray, p: float) -> float | None:
        return round(float(np.quantile(values, p)), 2) if values.size else None

    regions = {f"{low}-{high}": round(float(np.mean(mmr[(bark >= low) & (bark < high)] > 0)), 5)
               for low, high in BARK_REGIONS if np.any((bark >= low) & (bark < high))}
    return {"share_above_threshold": round(float(np.mean(mmr > 0)), 5) if mmr.size else 0.0,
            "worst_clip_share": round(float(max(shares)), 5) if shares else 0.0,
            "clips_with_any_tile_above": int(sum(s > 0 for s in shares)),
            "excess_db": {"median": q(above, 0.5), "p95": q(above, 0.95), "max": q(above, 1.0)},
            "mmr_db": {"median": q(mmr, 0.5), "p95": q(mmr, 0.95), "p99": q(mmr, 0.99), "max": q(mmr, 1.0)},
            "share_above_by_bark": regions}


def summarise(checks: list[MaskingCheck]) -> dict[str, Any]:
    """JSON-ready figures over many clips, for the perceptual model (top level) and the conservative tonal one
    (``tonal``, with ``share_above_noise_masker_threshold``: the same tiles if every masker were noise-like):
    the share of tiles above the threshold (overall, by Bark region, the worst clip), how far above (median,
    p95, max of the positive MMRs) and the MMR distribution."""
    mmr = np.concatenate([c.mmr_db for c in checks]) if checks else np.zeros(0, dtype=np.float32)
    tonal = np.concatenate([c.tonal_mmr_db for c in checks]) if checks else np.zeros(0, dtype=np.float32)
    bark = np.concatenate([c.bark for c in checks]) if checks else np.zeros(0, dtype=np.int8)
    noise_mmr = tonal - (14.5 + bark + 0.5 - NOISE_OFFSET_DB)
    tonal_figures = _model_figures(tonal, bark, [c.tonal_share_above for c in checks]) | {
        "share_above_noise_masker_threshold": round(float(np.mean(noise_mmr > 0)), 5) if mmr.size else 0.0,
        "model": "1-Bark bands of a 2048-point STFT, Schroeder spreading, tonal offset 14.5 + z dB everywhere, "
                 "no threshold in quiet, no temporal masking"}
    return {"tiles": int(mmr.size)} | _model_figures(mmr, bark, [c.share_above for c in checks]) | {
        "model": "1-Bark bands of a 2048-point STFT, Schroeder spreading, MPEG-1 model 1 tonal share per band "
                 f"(offset between 14.5 + z and {NOISE_OFFSET_DB} dB), threshold in quiet at full scale = "
                 f"{FULL_SCALE_DB_SPL:g} dB SPL, no temporal masking",
        "tonal": tonal_figures}


def plot_examples(examples: list[tuple[str, np.ndarray, np.ndarray]], sr: int, path: Any) -> Any:
    """A PNG with one row per (title, original, marked): the original's spectrogram, the difference
    (marked - original) on the same colour scale, and the mark-to-mask ratio per tile by the perceptual model
    (red: above 0 dB), with the share above the tonal model's threshold in the title."""
    plt = pyplot()

    fig, axes = plt.subplots(len(examples), 3, figsize=(15, 3.2 * len(examples)), squeeze=False)
    for row, (title, original, marked) in zip(axes, examples, strict=True):
        mono, diff = _mono(original), _mono(marked) - _mono(original)
        s_db = 10 * np.log10(_power_spectrum(np.pad(mono, (0, N_FFT))) + 1e-12).T
        d_db = 10 * np.log10(_power_spectrum(np.pad(diff, (0, N_FFT))) + 1e-12).T
        top = float(s_db.max())
        times = np.arange(s_db.shape[1]) * HOP / sr
        freqs = np.fft.rfftfreq(N_FFT, 1.0 / sr) / 1000
        for ax, data, label in ((row[0], s_db, f"{title}: original (dB)"),
                                (row[1], d_db, "difference marked - original, same scale (dB)")):
            image = ax.pcolormesh(times, freqs, data, vmin=top - 100, vmax=top, cmap="magma", shading="auto")
            ax.set_ylim(0, 8)
            ax.set_ylabel("kHz")
            ax.set_title(label, fontsize=9)
            fig.colorbar(image, ax=ax)
        mmr, tonal_mmr, judged = _mmr_maps(mono, diff, sr)
        share, tonal_share = float(np.mean(mmr[judged] > 0)), float(np.mean(tonal_mmr[judged] > 0))
        mmr[~judged] = np.nan
        image = row[2].pcolormesh(np.arange(mmr.shape[0] + 1) * HOP / sr, np.arange(mmr.shape[1] + 1), mmr.T,
                                  vmin=-30, vmax=30, cmap="RdBu_r", shading="flat")
        row[2].set_ylim(0, 20)
        row[2].set_ylabel("Bark")
        row[2].set_title(f"mark-to-mask ratio (dB; red > 0: {100 * share:.2f} % of tiles; "
                         f"tonal model {100 * tonal_share:.1f} %)", fontsize=9)
        fig.colorbar(image, ax=row[2])
    for ax in axes[-1]:
        ax.set_xlabel("seconds")
    return save_figure(fig, path, dpi=72)


def plot_distributions(groups: dict[str, list[MaskingCheck]], path: Any) -> Any:
    """A PNG with the share of tiles whose mark-to-mask ratio exceeds x (x on the axis), one curve per group
    (the watermark, and references such as MP3 coding noise), by the perceptual and by the tonal model."""
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    grid = np.linspace(-40, 30, 141)
    for ax, attribute, title in ((axes[0], "mmr_db", "perceptual model (MPEG-1 model 1 tonality, threshold in quiet)"),
                                 (axes[1], "tonal_mmr_db", "tonal model (conservative)")):
        for name, checks in groups.items():
            values = np.sort(np.concatenate([getattr(c, attribute) for c in checks]))
            share = 1.0 - np.searchsorted(values, grid, side="right") / max(values.size, 1)
            ax.semilogy(grid, np.maximum(share, 1e-6), label=f"{name} ({100 * np.mean(values > 0):.2f} % > 0 dB)")
        ax.axvline(0.0, color="k", lw=1, ls="--")
        ax.set_ylim(1e-5, 1.2)
        ax.set_xlabel("mark-to-mask ratio x (dB)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("share of tiles with MMR > x")
    return save_figure(fig, path, dpi=90)
