"""Speech for the paraphrases in other voices: the augmented audio view.

    python data_prep/augment_audio.py --csv data/iemocap.csv --out_dir data/iemocap_augmented --engine espeak

Writes `<out_dir>/<voice>_<FileName>.wav` (16 kHz mono), the authors' naming: the loader takes
the part from the last `Ses` as the original utterance. Engines (registry `ENGINES`):
`espeak` (espeak-ng, offline; a voice, rate and pitch drawn per utterance from the seed) and
`yourtts` (Coqui TTS zero-shot YourTTS, used when the `TTS` package is installed; the speaker
reference is another utterance's wav). Existing files are kept; the run is deterministic.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from utils import audio as audio_io  # noqa: E402
from utils.manifest import read_manifest  # noqa: E402


class TTSEngine(Protocol):
    """A text-to-speech backend: `synthesize` writes 16 kHz mono speech of `text` to `out`."""

    def voices(self) -> list[str]: ...

    def synthesize(
        self,
        text: str,
        voice: str,
        out: Path,
        rng: np.random.Generator,
        reference_wav: Path | None = None,
    ) -> None: ...


def voice_tag(voice: str) -> str:
    """File-name-safe voice name (never contains 'Ses', which marks where FileName starts)."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", voice).replace("Ses", "ses")


class EspeakEngine:
    """espeak-ng with varied voices and prosody (offline, fast)."""

    # "en", not "en-gb": espeak-ng ignores the variant of "en-gb+<variant>" (one voice for all)
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
        if shutil.which("espeak-ng") is None:
            raise RuntimeError(
                "espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng)"
            )

    def voices(self) -> list[str]:
        return [f"{b}+{v}" for b in self.BASES for v in self.VARIANTS]

    def synthesize(self, text, voice, out, rng, reference_wav=None) -> None:
        rate, pitch = int(rng.integers(140, 200)), int(rng.integers(25, 75))
        with tempfile.TemporaryDirectory() as tmp:
            raw = os.path.join(tmp, "raw.wav")
            cmd = [
                "espeak-ng",
                "-v",
                voice,
                "-s",
                str(rate),
                "-p",
                str(pitch),
                "-w",
                raw,
                text or ".",
            ]
            subprocess.run(cmd, check=True, capture_output=True)
            wave = audio_io.load(raw)
        sf.write(out, wave, audio_io.SAMPLE_RATE, subtype="PCM_16")


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

    def synthesize(self, text, voice, out, rng, reference_wav=None) -> None:
        if reference_wav is None:
            raise ValueError("YourTTS needs a reference wav of the target speaker")
        wave = np.asarray(
            self.tts.tts(text=text, speaker_wav=str(reference_wav), language="en"), dtype=np.float32
        )
        rate = self.tts.synthesizer.output_sample_rate
        sf.write(out, wave if rate == 16000 else _resample(wave, rate), 16000, subtype="PCM_16")


def _resample(wave: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    return soxr.resample(wave, rate, audio_io.SAMPLE_RATE).astype(np.float32)


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
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)

    df = read_manifest(args.csv)
    try:
        engine = ENGINES[args.engine]()
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
                    (
                        text,
                        voice,
                        out,
                        np.random.default_rng([args.seed, i, k]),
                        Path(args.wav_dir) / f"{other}.wav",
                    )
                )

    def run(job):
        text, voice, out, rng, ref = job
        tmp = out.with_suffix(".tmp.wav")
        engine.synthesize(text, voice, tmp, rng, ref)
        tmp.replace(out)

    workers = args.jobs if args.engine == "espeak" else 1
    with ThreadPoolExecutor(max(1, workers)) as pool:
        list(tqdm(pool.map(run, jobs), total=len(jobs), desc=f"tts ({args.engine})"))
    total = len(list(out_dir.glob("*.wav")))
    print(
        f"wrote {len(jobs)} new file(s); {total} augmented wav(s) in {out_dir} for {len(df)} utterances"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
