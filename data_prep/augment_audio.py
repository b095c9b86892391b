"""Speech for the paraphrases in other voices: the augmented audio view.

    python -m data_prep.augment_audio --csv data/iemocap.csv --out_dir data/iemocap_augmented --engine espeak

Writes `<out_dir>/<voice>_<FileName>.wav` (16 kHz mono), the authors' naming: the loader takes
the part from the last `Ses` as the original utterance. Engines (registry `ENGINES`):
`espeak` (libespeak-ng from the pinned wheel espeakng-loader, offline: data_prep/espeak.py; a
voice, rate and pitch drawn per utterance from the seed) and
`yourtts` (Coqui TTS zero-shot YourTTS, used when the `TTS` package is installed; the speaker
reference is another utterance's wav). Existing files are kept; the run is deterministic.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf
import soxr
from tqdm import tqdm

from data_prep.cli import run
from data_prep.espeak import (
    Espeak,
    Prosody,
    Request,
    SynthesizerUnavailable,
    synthesize_many,
    trim_trailing_silence,
)
from training.manifest import read_manifest
from utils import audio as audio_io


@dataclass
class TTSJob:
    """One file to write: `text` in `voice`, prosody drawn from `rng`."""

    text: str
    voice: str
    out: Path
    rng: np.random.Generator
    reference_wav: Path | None = None  # a recording of the target speaker (yourtts)


class TTSEngine(Protocol):
    """A text-to-speech backend: writes 16 kHz mono speech of each job's text to `job.out`."""

    def voices(self) -> list[str]: ...

    def synthesize(self, jobs: list[TTSJob], workers: int) -> Iterator[Path]:
        """Write every job's file (in order), yielding each path once written."""
        ...


def _write(out: Path, wave: np.ndarray) -> None:
    tmp = out.with_suffix(".tmp.wav")
    sf.write(tmp, wave, audio_io.SAMPLE_RATE, subtype="PCM_16")
    tmp.replace(out)


def voice_tag(voice: str) -> str:
    """File-name-safe voice name (never contains 'Ses', which marks where FileName starts)."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", voice).replace("Ses", "ses")


class EspeakEngine:
    """eSpeak NG (libespeak-ng) with varied voices and prosody, offline."""

    # "en", not "en-gb": "en-gb" is a language, not a voice (the espeak-ng program used one male
    # voice for every "en-gb+<variant>"; data_prep/espeak.py refuses it)
    BASES = ("en-us", "en", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-us-nyc")
    VARIANTS = (
        "m1",
        "m2",
        "m3",
        "m4",
        "m5",
        "m6",
        "m7",
        "f1",
        "f2",
        "f3",
        "f4",
        "f5",
        "klatt",
        "klatt2",
    )

    def __init__(self) -> None:
        self.espeak = Espeak()  # SynthesizerUnavailable says what to install

    def voices(self) -> list[str]:
        return [f"{b}+{v}" for b in self.BASES for v in self.VARIANTS]

    @staticmethod
    def request(job: TTSJob) -> Request:
        rate, pitch = int(job.rng.integers(140, 200)), int(job.rng.integers(25, 75))
        return Request(job.text, job.voice, Prosody(rate=rate, pitch=pitch))

    def synthesize(self, jobs: list[TTSJob], workers: int) -> Iterator[Path]:
        speech = synthesize_many(self.espeak, [self.request(j) for j in jobs], workers)
        for job, samples in zip(jobs, speech, strict=True):
            samples = trim_trailing_silence(samples, self.espeak.sample_rate)
            wave = samples.astype(np.float32) / 32768.0
            _write(job.out, _resample(wave, self.espeak.sample_rate))
            yield job.out


class YourTTSEngine:
    """Coqui TTS zero-shot multi-speaker YourTTS (as the authors used); needs `pip install TTS`."""

    MODEL = "tts_models/multilingual/multi-dataset/your_tts"

    def __init__(self, device: str = "cpu") -> None:
        try:
            from TTS.api import TTS  # type: ignore[import-not-found]
        except ImportError as exc:
            raise RuntimeError(
                "engine 'yourtts' needs the Coqui TTS package: pip install TTS"
            ) from exc
        self.tts = TTS(self.MODEL).to(device)

    def voices(self) -> list[str]:
        return ["yourtts"]

    def synthesize(self, jobs: list[TTSJob], workers: int) -> Iterator[Path]:
        for job in jobs:  # one model: no parallel workers
            if job.reference_wav is None:
                raise ValueError("YourTTS needs a reference wav of the target speaker")
            wave = np.asarray(
                self.tts.tts(text=job.text, speaker_wav=str(job.reference_wav), language="en"),
                dtype=np.float32,
            )
            _write(job.out, _resample(wave, self.tts.synthesizer.output_sample_rate))
            yield job.out


def _resample(wave: np.ndarray, rate: int) -> np.ndarray:
    """float32 at `rate` -> float32 at 16 kHz (soxr HQ, as utils.audio.load)."""
    if rate == audio_io.SAMPLE_RATE:
        return wave
    return soxr.resample(wave, rate, audio_io.SAMPLE_RATE, quality="HQ").astype(np.float32)


ENGINES = {"espeak": EspeakEngine, "yourtts": YourTTSEngine}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--csv", default="data/iemocap.csv")
    parser.add_argument("--out_dir", default="data/iemocap_augmented")
    parser.add_argument(
        "--wav_dir", default="data/iemocap", help="originals (speaker references for yourtts)"
    )
    parser.add_argument("--engine", choices=sorted(ENGINES), default="espeak")
    parser.add_argument("--column", default="AugmentedText", help="text to speak")
    parser.add_argument("--variants", type=int, default=1, help="voices per utterance")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="synthesis processes (espeak; used from 500 utterances per process on)",
    )
    args = parser.parse_args(argv)

    df = read_manifest(args.csv)
    try:
        engine = ENGINES[args.engine]()
    except SynthesizerUnavailable as exc:
        print(f"augment_audio.py: cannot speak the paraphrases: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        parser.error(str(exc))
    voices = engine.voices()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = df["FileName"].tolist()
    jobs = []
    for i, (name, text) in enumerate(zip(names, df[args.column], strict=True)):
        rng = np.random.default_rng([args.seed, i])
        for k in range(args.variants):
            voice = voices[int(rng.integers(len(voices)))]
            other = names[int(rng.integers(len(names)))]  # a different speaker's recording
            out = out_dir / f"{voice_tag(voice)}_{name}.wav"
            if not out.is_file():
                jobs.append(
                    TTSJob(
                        text,
                        voice,
                        out,
                        np.random.default_rng([args.seed, i, k]),
                        Path(args.wav_dir) / f"{other}.wav",
                    )
                )
    written = engine.synthesize(jobs, args.jobs)
    for _ in tqdm(written, total=len(jobs), desc=f"tts ({args.engine})"):
        pass
    total = len(list(out_dir.glob("*.wav")))
    print(
        f"wrote {len(jobs)} new file(s); {total} augmented wav(s) in {out_dir} for {len(df)} utterances"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
