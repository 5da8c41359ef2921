"""Pictures of a work, stored as PNG artifacts: a log-mel spectrogram of its audio and a piano roll of its score.

The worker draws both when a job succeeds (:func:`write_images`); a work made before images existed gets them
drawn from its stored WAV and MIDI on first request (:func:`make_missing_image`). In a job's ``artifacts`` the
images are stored under their kind (``spectrogram``, ``pianoroll``), in files of type ``png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.plotting import pyplot, save_figure
from tunesmith.service.storage import ArtifactStore
from tunesmith.symbolic.score import Score

IMAGES = ("spectrogram", "pianoroll")


def work_title(model: str, result: dict[str, Any] | None) -> str:
    """How the pictures name a work: "chorale in D minor" (the key once the job has run)."""
    key = (result or {}).get("key")
    return f"{model} in {key}" if key else model
N_FFT = 2048
HOP = 512
N_MELS = 128
FMAX = 11025.0  # where a rendered piece has almost all of its energy


def artifact_ext(kind: str) -> str:
    """File type of an artifact stored under ``kind`` (an image kind, a stem ``stem/NAME``, the stems' ``zip``,
    or an audio/MIDI format)."""
    if kind in IMAGES:
        return "png"
    if kind == "stems.zip":
        return "zip"
    return "wav" if kind.startswith("stem/") else kind


def plot_spectrogram(audio: np.ndarray, sr: int, path: Path, *, title: str = "",
                     width: float = 12.0) -> Path:
    """Draw the log-mel spectrogram (dB, mono mix) of ``audio`` (channels, n) or (n,) as a PNG at ``path``."""
    import librosa
    plt = pyplot()

    from tunesmith.audio.features import log_mel

    mono = np.asarray(audio, dtype=np.float32)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    mel = log_mel(mono, sr=sr, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, fmax=min(FMAX, sr / 2))
    seconds = len(mono) / sr
    fig, ax = plt.subplots(figsize=(width, 3.6), dpi=100)
    image = ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", extent=(0.0, seconds, 0, N_MELS),
                      interpolation="nearest")
    centres = librosa.mel_frequencies(n_mels=N_MELS, fmin=0.0, fmax=min(FMAX, sr / 2))
    marks = [hz for hz in (100, 250, 500, 1000, 2000, 4000, 8000) if hz <= centres[-1]]
    ax.set_yticks([float(np.searchsorted(centres, hz)) for hz in marks],
                  [f"{hz / 1000:g}k" if hz >= 1000 else str(hz) for hz in marks])
    ax.set_xlabel("seconds")
    ax.set_ylabel("Hz (mel scale)")
    ax.set_title(f"{title}: log-mel spectrogram" if title else "log-mel spectrogram")
    fig.colorbar(image, ax=ax, format="%+.0f dB", pad=0.01)
    return save_figure(fig, path)


def _store_png(store: ArtifactStore, draw: Any) -> dict[str, Any]:
    with store.scratch_file("png") as path:
        draw(path)
        sha, size = store.put_file(path, "png")
    return {"sha256": sha, "bytes": size}


def write_images(store: ArtifactStore, score: Score, audio: np.ndarray, sr: int, *, title: str) -> dict[str, Any]:
    """Draw both pictures of a work (``title``: what it is, e.g. "chorale in D minor") into the store; returns the
    artifact entries by kind."""
    from tunesmith.symbolic.pianoroll import plot_piano_roll

    return {"spectrogram": _store_png(store, lambda path: plot_spectrogram(audio, sr, path, title=title)),
            "pianoroll": _store_png(store, lambda path: plot_piano_roll(score, path, title=title))}


def make_missing_image(store: ArtifactStore, artifacts: dict[str, Any], kind: str, *,
                       title: str) -> dict[str, Any] | None:
    """Draw the ``kind`` picture of a finished work from its stored WAV or MIDI; None if that file is missing."""
    if kind == "spectrogram" and "wav" in artifacts:
        from tunesmith.audio.io import load

        wav = store.local(artifacts["wav"]["sha256"], "wav")
        if wav is None:
            return None
        audio, sr = load(wav, mono=False)
        return _store_png(store, lambda path: plot_spectrogram(audio, int(sr), path, title=title))
    if kind == "pianoroll" and "mid" in artifacts:
        from tunesmith.symbolic.io import read_score
        from tunesmith.symbolic.pianoroll import plot_piano_roll

        midi = store.local(artifacts["mid"]["sha256"], "mid")
        if midi is None:
            return None
        return _store_png(store, lambda path: plot_piano_roll(read_score(midi), path, title=title))
    return None
