"""Waveform I/O and signal-level processing (soundfile + soxr; no librosa, no torchaudio).

Everything works on 1-D float32 numpy arrays at 16 kHz (`SAMPLE_RATE`), units are samples.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from utils.errors import DataError

SAMPLE_RATE = 16000
MAX_AUDIO_SAMPLES = 210_000  # the authors\' cut: the first 13.125 s at 16 kHz


@dataclass(frozen=True)
class AudioInfo:
    """Header facts about a wav, read without decoding it."""

    frames: int  # samples per channel at the file's own rate
    samplerate: int
    channels: int

    @property
    def samples_16k(self) -> int:
        """Length after conversion to `SAMPLE_RATE` (what the loader will produce)."""
        return int(round(self.frames * SAMPLE_RATE / self.samplerate))

    @property
    def needs_conversion(self) -> bool:
        return self.samplerate != SAMPLE_RATE or self.channels != 1


def probe(path: str | Path) -> AudioInfo:
    """Read a wav header; raise `DataError` for a missing, unreadable or empty file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"audio {path}: file not found")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise DataError(f"audio {path}: not a readable audio file ({exc})") from None
    if info.frames <= 0:
        raise DataError(f"audio {path}: zero-length audio (expected at least one sample)")
    return AudioInfo(
        frames=int(info.frames), samplerate=int(info.samplerate), channels=int(info.channels)
    )


def load(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode a file to mono float32 at `sample_rate`: (samples,).

    Multi-channel audio is averaged; other rates are resampled with soxr (high quality).
    Missing/unreadable/truncated/empty files and NaN or Inf samples raise `DataError`.
    """
    path = Path(path)
    probe(path)
    try:
        wave, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise DataError(f"audio {path}: could not decode ({exc})") from None
    return to_16k_mono(wave, rate, sample_rate, source=f"audio {path}")


def write_16k_mono(src: str | Path, dst: str | Path) -> bool:
    """Copy a 16 kHz mono wav to `dst`, convert anything else (PCM 16); False when `dst`
    already exists (data preparation is idempotent). Written atomically."""
    src, dst = Path(src), Path(dst)
    if dst.is_file() and dst.stat().st_size > 0:
        return False
    info = probe(src)
    tmp = dst.with_suffix(".tmp.wav")
    if info.samplerate == SAMPLE_RATE and info.channels == 1:
        shutil.copyfile(src, tmp)
    else:
        sf.write(tmp, load(src), SAMPLE_RATE, subtype="PCM_16")
    tmp.replace(dst)
    return True


def to_16k_mono(
    wave: np.ndarray, rate: int, sample_rate: int = SAMPLE_RATE, source: str = "waveform"
) -> np.ndarray:
    """(samples,) or (samples, channels) at `rate` -> mono float32 at `sample_rate` (soxr HQ);
    empty input and NaN/Inf samples raise `DataError` naming `source`."""
    wave = np.asarray(wave, dtype=np.float32)
    wave = wave[:, None] if wave.ndim == 1 else wave
    if wave.ndim != 2:
        raise DataError(f"{source}: shape {wave.shape}, expected (samples,) or (samples, channels)")
    if wave.shape[0] == 0:
        raise DataError(f"{source}: zero-length audio (expected at least one sample)")
    if not np.isfinite(wave).all():
        raise DataError(f"{source}: contains NaN or Inf samples (expected finite values)")
    wave = wave.mean(axis=1) if wave.shape[1] > 1 else wave[:, 0]
    if rate != sample_rate:
        wave = soxr.resample(wave, rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(wave, dtype=np.float32)


def normalize(wave: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance, as Wav2Vec2FeatureExtractor(do_normalize=True).

    (x - mean) / sqrt(var + 1e-7): an all-silent input gives zeros, never NaN.
    """
    wave = np.asarray(wave, dtype=np.float32)
    if wave.size == 0:
        return wave
    return ((wave - wave.mean()) / np.sqrt(wave.var() + 1e-7)).astype(np.float32)


def crop(wave: np.ndarray, max_samples: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Keep at most `max_samples`: a random window when `rng` is given, else the first ones."""
    if max_samples <= 0 or wave.shape[0] <= max_samples:
        return wave
    start = 0 if rng is None else int(rng.integers(0, wave.shape[0] - max_samples + 1))
    return wave[start : start + max_samples]


def prepare(
    wave: np.ndarray, max_samples: int, rng: np.random.Generator | None = None
) -> np.ndarray:
    """What the model is fed: cut to `max_samples` (the first ones without `rng`), then
    normalised. Training, evaluation and prediction all go through this."""
    return normalize(crop(wave, max_samples, rng))


# --- signal-level augmentation (the fallback when no TTS audio exists) ---------------------


def change_speed(wave: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times faster (tempo and pitch together, like `sox speed`)."""
    if factor == 1.0:
        return wave
    return soxr.resample(wave, SAMPLE_RATE * factor, SAMPLE_RATE).astype(np.float32)


def time_stretch(wave: np.ndarray, rate: float, frame: int = 1024, hop: int = 256) -> np.ndarray:
    """Tempo change by `rate` keeping pitch: overlap-add with a cross-correlation search (WSOLA)."""
    if rate == 1.0 or wave.shape[0] < 2 * frame:
        return wave
    window = np.hanning(frame).astype(np.float32)
    out_len = int(wave.shape[0] / rate)
    n_frames = max(1, (out_len - frame) // hop + 1)
    out = np.zeros(n_frames * hop + frame, dtype=np.float32)
    norm = np.zeros_like(out)
    tolerance = hop // 2
    padded = np.pad(wave, (tolerance, frame + tolerance + int(hop * rate) + 1))
    prev = None
    for i in range(n_frames):
        centre = int(i * hop * rate) + tolerance
        if prev is None:
            start = centre
        else:
            # pick the offset whose frame best continues the previously placed one
            region = padded[centre - tolerance : centre + tolerance + frame]
            corr = np.correlate(region, prev, mode="valid")
            start = centre - tolerance + int(np.argmax(corr))
        seg = padded[start : start + frame]
        out[i * hop : i * hop + frame] += seg * window
        norm[i * hop : i * hop + frame] += window
        prev = padded[start + hop : start + hop + frame]
    return (out / np.maximum(norm, 1e-3))[:out_len].astype(np.float32)


def shift_pitch(wave: np.ndarray, semitones: float) -> np.ndarray:
    """Pitch shift keeping duration: resample (changes both) then time-stretch back."""
    if semitones == 0:
        return wave
    factor = 2.0 ** (semitones / 12.0)
    faster = change_speed(wave, factor)  # pitch * factor, duration / factor
    return time_stretch(faster, 1.0 / factor)


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White noise at `snr_db` relative to the signal power (a silent input gets faint noise)."""
    power = float(np.mean(wave.astype(np.float64) ** 2)) or 1e-8
    noise = rng.standard_normal(wave.shape[0]).astype(np.float32)
    return (wave + noise * np.sqrt(power / 10 ** (snr_db / 10))).astype(np.float32)


def random_augment(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Speed 0.9-1.1, pitch +-2 semitones, noise at 15-30 dB SNR: a different "view" of `wave`."""
    wave = change_speed(wave, float(rng.uniform(0.9, 1.1)))
    wave = shift_pitch(wave, float(rng.uniform(-2.0, 2.0)))
    return add_noise(wave, float(rng.uniform(15.0, 30.0)), rng)
