"""A reproducible stand-in for a listening check: is the watermark below the music's masking threshold?

Nobody can listen here, so the mark is compared with a simple simultaneous-masking model of the original:

1. a 2048-point Hann STFT of the mono mix at the file's rate (hop 1024, about 23 ms at 44.1 kHz), its power
   summed into critical bands of one Bark (Zwicker and Terhardt's Hz -> Bark formula), up to 24 Bark;
2. the band powers of the original spread over neighbouring bands with Schroeder's spreading function
   (15.81 + 7.5 (dz + 0.474) - 17.5 sqrt(1 + (dz + 0.474)²) dB);
3. lowered by Johnston's (1988) offset for a *tonal* masker, 14.5 + z dB in band z (the conservative choice:
   a noise-like masker would allow about 5.5 dB).

The mark-to-mask ratio (MMR) of a tile (frame x Bark band) is the mark's power (marked - original) over that
threshold, in dB; above 0 dB the model says the mark could be heard there. Deliberately conservative: no
absolute threshold of hearing (the playback level is unknown, so a mark in near-silence counts against it),
no temporal pre- or post-masking (the mark's 16 ms tiles sit inside its own onsets), and no masking of the
mark by itself. It is a model, not a listener: it says where to listen first, not that nobody will hear it.
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
NOISE_OFFSET_DB = 5.5  # Johnston's offset for a noise-like masker: the lenient bound, reported beside the tonal one
SOUNDING_DB = 60.0  # frames within this many dB of the clip's loudest frame are judged
_EPS = 1e-20


def hz_to_bark(f: np.ndarray | float) -> np.ndarray:
    """Critical-band rate in Bark (Zwicker and Terhardt 1980)."""
    f = np.asarray(f, dtype=np.float64)
    return 13.0 * np.arctan(0.00076 * f) + 3.5 * np.arctan((f / 7500.0) ** 2)


@lru_cache(maxsize=8)
def _band_matrix(sr: int) -> np.ndarray:
    """(bands, bins) 0/1: which FFT bins fall into each one-Bark band (bands 0..23)."""
    z = np.floor(hz_to_bark(np.fft.rfftfreq(N_FFT, 1.0 / sr))).astype(int)
    bands = min(MAX_BARK, int(z.max()) + 1)
    return (z[None, :] == np.arange(bands)[:, None]).astype(np.float64)


@lru_cache(maxsize=4)
def _spreading(bands: int) -> np.ndarray:
    """(bands, bands) linear spreading: [i, j] is how much a masker in band j masks band i (Schroeder 1979)."""
    dz = np.arange(bands)[:, None] - np.arange(bands)[None, :] + 0.474
    return 10 ** ((15.81 + 7.5 * dz - 17.5 * np.sqrt(1.0 + dz * dz)) / 10)


def _band_power(y: np.ndarray, sr: int) -> np.ndarray:
    """(frames, bands) power of the mono mix ``y`` in one-Bark bands."""
    if len(y) < N_FFT:
        y = np.pad(y, (0, N_FFT - len(y)))
    frames = np.lib.stride_tricks.sliding_window_view(y, N_FFT)[::HOP]
    spectrum = sfft.rfft(frames * np.hanning(N_FFT), axis=1, workers=1)
    return (np.abs(spectrum) ** 2) @ _band_matrix(sr).T


def masking_threshold(band_power: np.ndarray) -> np.ndarray:
    """The masking threshold (same shape as ``band_power``, frames x Bark bands) of a host signal."""
    bands = band_power.shape[1]
    spread = band_power @ _spreading(bands).T
    offset_db = 14.5 + (np.arange(bands) + 0.5)
    return spread * 10 ** (-offset_db / 10)


@dataclass(frozen=True)
class MaskingCheck:
    """Mark-to-mask ratios (dB) of every judged tile (a sounding frame x Bark band) of one clip."""

    mmr_db: np.ndarray
    bark: np.ndarray  # each tile's Bark band
    tiles: int

    @property
    def share_above(self) -> float:
        """Share of judged tiles where the mark exceeds the masking threshold."""
        return float(np.mean(self.mmr_db > 0)) if self.tiles else 0.0


def mark_to_mask(original: np.ndarray, marked: np.ndarray, sr: int) -> MaskingCheck:
    """The mark-to-mask ratio of every tile (sounding frame x Bark band) of ``marked`` against ``original``.

    ``original`` and ``marked``: float audio of the same shape, (n,) or (channels, n)."""
    original, marked = np.asarray(original), np.asarray(marked)
    if original.shape != marked.shape or original.ndim not in (1, 2) or original.shape[-1] == 0:
        raise ParameterError(f"original and marked audio must have the same (n,) or (channels, n) shape, got "
                             f"{original.shape} and {marked.shape}", field="marked")
    mono = original.mean(axis=0) if original.ndim == 2 else original
    mark = (marked - original).mean(axis=0) if original.ndim == 2 else marked - original
    host = _band_power(mono.astype(np.float64), sr)
    mark_power = _band_power(mark.astype(np.float64), sr)
    frame_power = host.sum(axis=1)
    sounding = frame_power > frame_power.max() * 10 ** (-SOUNDING_DB / 10) if frame_power.size else frame_power > 0
    mmr = 10 * np.log10((mark_power[sounding] + _EPS) / (masking_threshold(host)[sounding] + _EPS))
    judged = mark_power[sounding] > _EPS  # bands the mark does not reach (above 7 kHz) are not judged
    bark = np.broadcast_to(np.arange(host.shape[1]), mmr.shape)[judged]
    return MaskingCheck(mmr_db=mmr[judged].astype(np.float32), bark=bark.astype(np.int8), tiles=int(judged.sum()))


def summarise(checks: list[MaskingCheck]) -> dict[str, Any]:
    """JSON-ready figures over many clips: the share of tiles above the threshold (overall, the worst clip, and
    with the lenient noise-masker offset instead of the tonal one), how far above (median, p95, max of the
    positive MMRs) and the MMR distribution."""
    mmr = np.concatenate([c.mmr_db for c in checks]) if checks else np.zeros(0, dtype=np.float32)
    bark = np.concatenate([c.bark for c in checks]) if checks else np.zeros(0, dtype=np.int8)
    noise_mmr = mmr - (14.5 + bark + 0.5 - NOISE_OFFSET_DB)  # the same tiles if every masker were noise-like
    above = mmr[mmr > 0]
    shares = [c.share_above for c in checks]

    def q(values: np.ndarray, p: float) -> float | None:
        return round(float(np.quantile(values, p)), 2) if values.size else None

    return {"tiles": int(mmr.size), "share_above_threshold": round(float(np.mean(mmr > 0)), 5) if mmr.size else 0.0,
            "share_above_noise_masker_threshold": round(float(np.mean(noise_mmr > 0)), 5) if mmr.size else 0.0,
            "worst_clip_share": round(float(max(shares)), 5) if shares else 0.0,
            "clips_with_any_tile_above": int(sum(s > 0 for s in shares)),
            "excess_db": {"median": q(above, 0.5), "p95": q(above, 0.95), "max": q(above, 1.0)},
            "mmr_db": {"median": q(mmr, 0.5), "p95": q(mmr, 0.95), "p99": q(mmr, 0.99), "max": q(mmr, 1.0)},
            "model": "1-Bark bands of a 2048-point STFT, Schroeder spreading, tonal offset 14.5 + z dB, "
                     "no threshold in quiet, no temporal masking"}


def plot_examples(examples: list[tuple[str, np.ndarray, np.ndarray]], sr: int, path: Any) -> Any:
    """A PNG with one row per (title, original, marked): the original's spectrogram, the difference
    (marked - original) on the same colour scale, and the mark-to-mask ratio per tile (red: above 0 dB)."""
    plt = pyplot()

    fig, axes = plt.subplots(len(examples), 3, figsize=(15, 3.2 * len(examples)), squeeze=False)
    for row, (title, original, marked) in zip(axes, examples, strict=True):
        mono = original.mean(axis=0) if original.ndim == 2 else original
        diff = (marked - original).mean(axis=0) if original.ndim == 2 else marked - original
        window = np.hanning(N_FFT)
        frames = np.lib.stride_tricks.sliding_window_view(np.pad(mono, (0, N_FFT)), N_FFT)[::HOP]
        dframes = np.lib.stride_tricks.sliding_window_view(np.pad(diff, (0, N_FFT)), N_FFT)[::HOP]
        s_db = 10 * np.log10(np.abs(sfft.rfft(frames * window, axis=1)) ** 2 + 1e-12).T
        d_db = 10 * np.log10(np.abs(sfft.rfft(dframes * window, axis=1)) ** 2 + 1e-12).T
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
        host = _band_power(mono.astype(np.float64), sr)
        mark_power = _band_power(diff.astype(np.float64), sr)
        mmr = 10 * np.log10((mark_power + _EPS) / (masking_threshold(host) + _EPS))
        frame_power = host.sum(axis=1)
        mmr[frame_power <= frame_power.max() * 10 ** (-SOUNDING_DB / 10)] = np.nan
        mmr[mark_power <= _EPS] = np.nan  # bands the mark does not reach
        image = row[2].pcolormesh(np.arange(mmr.shape[0] + 1) * HOP / sr, np.arange(mmr.shape[1] + 1), mmr.T,
                                  vmin=-30, vmax=30, cmap="RdBu_r", shading="flat")
        share = float(np.mean(mmr[np.isfinite(mmr)] > 0))
        row[2].set_ylim(0, 20)
        row[2].set_ylabel("Bark")
        row[2].set_title(f"mark-to-mask ratio per tile (dB; red > 0: {100 * share:.2f} % of tiles)", fontsize=9)
        fig.colorbar(image, ax=row[2])
    for ax in axes[-1]:
        ax.set_xlabel("seconds")
    return save_figure(fig, path, dpi=72)
