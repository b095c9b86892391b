"""Synthesize a small corpus laid out exactly like IEMOCAP_full_release, for the offline demo.

    python data_prep/make_demo_corpus.py --out data/demo/IEMOCAP_full_release

5 sessions x 2 speakers (F, M); per session improvised (`Ses01F_impro01`) and scripted
(`Ses01F_script01_1`) dialogs, each spoken by its own espeak-ng voice per speaker (40 distinct
voices: 8 accents x 5 female variants, none shared between dialogs); EmoEvaluation
and transcription files in the real formats (header, annotator lines, some CRLF), a few `exc`
rows (class happy) and `xxx` rows (dropped by preparation). Emotion sets the prosody: pitch
level, pitch range, speaking rate (loudness too, but per-utterance normalisation removes it).
Transcripts carry an emotion phrase only about half of the time; word count is independent of
the class. Without espeak-ng a numpy source-filter synthesizer is used. The output is
byte-identical for a given seed and engine; re-running with the same arguments does nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from scipy.signal import lfilter
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from data_prep.demo_text import make_sentence  # noqa: E402

SAMPLE_RATE = 16000
CLASSES = ("hap", "ang", "neu", "sad")
# espeak-ng settings per class: pitch (-p, 0-99), SSML pitch range, rate (-s, words/min), amplitude.
# Adjacent classes are ~5 semitones and ~1.3x in rate apart, more than the voices differ.
ESPEAK_PROSODY = {
    "sad": {"pitch": 10, "range": "x-low", "rate": 115, "amp": 60},
    "neu": {"pitch": 35, "range": "low", "rate": 155, "amp": 100},
    "hap": {"pitch": 90, "range": "x-high", "rate": 205, "amp": 130},
    "ang": {"pitch": 60, "range": "high", "rate": 270, "amp": 170},
}
# numpy fallback: F0 factor, pitch range (semitones), syllables/s
NUMPY_PROSODY = {
    "sad": (0.80, 1.0, 2.8),
    "neu": (1.00, 3.0, 4.0),
    "hap": (1.35, 6.5, 4.8),
    "ang": (1.15, 9.0, 6.0),
}
# Accents (espeak-ng language voices). Not "en-gb": espeak-ng resolves "en-gb+<variant>" to one
# male voice whatever the variant, which would give a "female" speaker a male voice and several
# dialogs the very same voice. "en" is the British voice that honours the variant.
BASES = (
    "en-us",
    "en",
    "en-gb-scotland",
    "en-029",
    "en-gb-x-rp",
    "en-us-nyc",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)
# Every speaker, F or M, is voiced by one of the female variants (median F0 within 3.6
# semitones of each other). With male variants too, the class pitch levels overlap across
# voices (a male angry voice sits at a female sad one), and a model that sees 32 training voices
# cannot learn to normalise pitch per speaker. 8 accents x 5 variants = 40 voices: one per
# dialog and speaker, none repeated.
VARIANTS = ("f1", "f2", "f3", "f4", "f5")
DIALOGS = (("F", "impro01"), ("M", "impro02"), ("F", "script01_1"), ("M", "script02_2"))
EXTRA_LABELS = ("xxx", "xxx", "fru")  # rows per speaker that preparation must drop
EXC_SHARE = 0.3  # share of happy rows labelled `exc`


@dataclass
class Voice:
    name: str  # espeak-ng voice spec, e.g. en-us+f3
    pitch_offset: int  # added to the class pitch (-p units)
    rate_factor: float  # multiplies the class rate
    f0: float  # numpy fallback base F0 in Hz


@dataclass
class Utterance:
    utt: str
    dialog: str
    session: int
    label: str
    text: str
    voice: Voice
    seed: int
    start: float = 0.0
    end: float = 0.0


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def plan_corpus(utterances_per_speaker: int, seed: int) -> list[Utterance]:
    """Decide every utterance (name, dialog, label, text, voice) before synthesizing any."""
    rng = np.random.default_rng(seed)
    pool = [f"{b}+{v}" for b in BASES for v in VARIANTS]
    pool = [pool[i] for i in rng.permutation(len(pool))]
    per_class = math.ceil(utterances_per_speaker / len(CLASSES))
    utts: list[Utterance] = []
    for session in range(1, 6):
        voices = {}
        for d_gender, d_name in DIALOGS:
            dialog = f"Ses0{session}{d_gender}_{d_name}"
            for g in ("F", "M"):
                voices[dialog, g] = Voice(
                    name=pool.pop(),
                    pitch_offset=int(rng.integers(-3, 4)),
                    rate_factor=float(rng.uniform(0.95, 1.05)),
                    f0=float(rng.uniform(180, 230)),  # one register for all, as with espeak-ng
                )
        dialogs = [f"Ses0{session}{dg}_{dn}" for dg, dn in DIALOGS]
        per_dialog: dict[str, list[tuple[str, str]]] = {d: [] for d in dialogs}
        for g in ("F", "M"):
            labels = [c for c in CLASSES for _ in range(per_class)][:utterances_per_speaker]
            labels = [labels[i] for i in rng.permutation(len(labels))] + list(EXTRA_LABELS)
            hap = [i for i, lab in enumerate(labels) if lab == "hap"]
            for i in (
                rng.choice(hap, size=int(round(EXC_SHARE * len(hap))), replace=False) if hap else []
            ):
                labels[i] = "exc"
            order = rng.permutation(len(labels))
            for k, i in enumerate(order):
                per_dialog[dialogs[k % len(dialogs)]].append((g, labels[i]))
        for dialog in dialogs:
            turns = per_dialog[dialog]
            turns = [turns[i] for i in rng.permutation(len(turns))]
            counters: Counter[str] = Counter()
            for g, label in turns:
                utt = f"{dialog}_{g}{counters[g]:03d}"
                counters[g] += 1
                text = make_sentence(label if label != "exc" else "hap", rng)
                utts.append(
                    Utterance(
                        utt,
                        dialog,
                        session,
                        label,
                        text,
                        voices[dialog, g],
                        int(rng.integers(2**31)),
                    )
                )
    return utts


def _class_of(label: str, rng: np.random.Generator) -> str:
    if label == "exc":
        return "hap"
    return label if label in CLASSES else str(rng.choice(CLASSES))


def synth_espeak(u: Utterance) -> np.ndarray:
    """espeak-ng at the class prosody with speaker and utterance jitter -> float32 16 kHz."""
    rng = np.random.default_rng(u.seed)
    p = ESPEAK_PROSODY[_class_of(u.label, rng)]
    pitch = int(np.clip(p["pitch"] + u.voice.pitch_offset + rng.integers(-4, 5), 0, 99))
    rate = int(p["rate"] * u.voice.rate_factor * rng.uniform(0.95, 1.05))
    ssml = f'<speak><prosody range="{p["range"]}">{u.text}</prosody></speak>'
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.wav")
        cmd = [
            "espeak-ng",
            "-m",
            "-v",
            u.voice.name,
            "-s",
            str(rate),
            "-p",
            str(pitch),
            "-a",
            str(p["amp"]),
            "-w",
            out,
            ssml,
        ]
        subprocess.run(cmd, check=True, capture_output=True)
        wave, rate_hz = sf.read(out, dtype="float32")
    if wave.ndim > 1:
        wave = wave.mean(axis=1)
    return soxr.resample(wave, rate_hz, SAMPLE_RATE).astype(np.float32)


_FORMANTS = (
    (730, 1090, 2440),
    (270, 2290, 3010),
    (530, 1840, 2480),
    (570, 840, 2410),
    (300, 870, 2240),
    (660, 1720, 2410),
)


def synth_numpy(u: Utterance) -> np.ndarray:
    """Source-filter fallback: a glottal pulse train with an F0 contour through vowel formants."""
    rng = np.random.default_rng(u.seed)
    factor, range_st, sps = NUMPY_PROSODY[_class_of(u.label, rng)]
    syllables = max(
        2, sum(max(1, sum(ch in "aeiouy" for ch in w.lower()) // 2 + 1) for w in u.text.split())
    )
    sps *= u.voice.rate_factor * rng.uniform(0.95, 1.05)
    f0 = u.voice.f0 * factor * 2 ** (rng.uniform(-1, 1) / 12)
    pieces = [np.zeros(int(0.15 * SAMPLE_RATE), np.float32)]
    for s in range(syllables):
        n = int(SAMPLE_RATE / sps * rng.uniform(0.8, 1.2))
        t = np.arange(n) / SAMPLE_RATE
        pos = s / max(1, syllables - 1)
        contour = f0 * 2 ** (
            (range_st * np.sin(2 * np.pi * (pos * 1.7 + t * sps / 2)) - 2 * pos) / 12
        )
        phase = np.cumsum(contour / SAMPLE_RATE)
        source = (phase % 1.0) - 0.5  # sawtooth glottal source
        vowel = np.zeros(n)
        for fc, bw in zip(
            _FORMANTS[int(rng.integers(len(_FORMANTS)))], (80, 100, 120), strict=True
        ):
            r = np.exp(-np.pi * bw / SAMPLE_RATE)
            a = [1, -2 * r * np.cos(2 * np.pi * fc / SAMPLE_RATE), r * r]
            vowel += lfilter([1 - r], a, source)
        env = np.minimum(1, np.minimum(t, t[::-1]) / 0.02)
        burst = rng.standard_normal(int(0.03 * SAMPLE_RATE)) * 0.05  # a consonant
        pieces += [burst.astype(np.float32), (vowel * env).astype(np.float32)]
    pieces.append(np.zeros(int(0.15 * SAMPLE_RATE), np.float32))
    wave = np.concatenate(pieces)
    return (0.3 * wave / (np.abs(wave).max() + 1e-9)).astype(np.float32)


def _vad(label: str, rng: np.random.Generator) -> str:
    v, a = {"hap": (4, 3.5), "exc": (4, 4), "ang": (1.5, 4), "neu": (3, 2.5), "sad": (1.5, 2)}.get(
        label, (3, 3)
    )
    vals = [v + rng.uniform(-0.5, 0.5), a + rng.uniform(-0.5, 0.5), rng.uniform(2, 4)]
    return "[" + ", ".join(f"{x:.4f}" for x in vals) + "]"


def _write_text(path: Path, lines: list[str], crlf: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n" if crlf else "\n").join(lines + [""]).encode("utf-8"))


def write_dialog_files(root: Path, dialog: str, utts: list[Utterance], seed: int) -> None:
    """EmoEvaluation and transcription files of one dialog in the release's formats."""
    rng = np.random.default_rng([seed, sum(map(ord, dialog))])
    session = f"Session{utts[0].session}"
    crlf = "script" in dialog  # part of the release has Windows line endings
    emo = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    trans = []
    for u in utts:
        emo.append(f"[{u.start:.4f} - {u.end:.4f}]\t{u.utt}\t{u.label}\t{_vad(u.label, rng)}")
        shown = u.label if u.label in ("hap", "ang", "neu", "sad", "exc") else "fru"
        name = {
            "hap": "Happiness",
            "exc": "Excited",
            "ang": "Anger",
            "neu": "Neutral state",
            "sad": "Sadness",
            "fru": "Frustration",
        }[shown]
        emo += [f"C-E{k}:\t{name};\t()" for k in (1, 2, 3)]
        emo += [
            f"A-E{k}:\tval {rng.integers(1, 6)}; act {rng.integers(1, 6)}; dom  {rng.integers(1, 6)};\t()"
            for k in (1, 2)
        ]
        emo.append("")
        words = u.text
        if rng.random() < 0.05:
            words = f"{words} [LAUGHTER]"
        trans.append(f"{u.utt} [{u.start:08.4f}-{u.end:08.4f}]: {words}")
    _write_text(root / session / "dialog" / "EmoEvaluation" / f"{dialog}.txt", emo, crlf)
    _write_text(root / session / "dialog" / "transcriptions" / f"{dialog}.txt", trans, crlf)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", default="data/demo/IEMOCAP_full_release", help="corpus root to create"
    )
    parser.add_argument(
        "--utterances_per_speaker",
        type=int,
        default=40,
        help="4-class utterances per speaker (10 speakers)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engine", choices=("auto", "espeak", "numpy"), default="auto")
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="parallel synthesis threads"
    )
    parser.add_argument("--force", action="store_true", help="regenerate even if the corpus exists")
    args = parser.parse_args(argv)

    engine = args.engine
    if engine == "auto":
        engine = "espeak" if espeak_available() else "numpy"
        if engine == "numpy":
            print("note: espeak-ng not found; using the built-in numpy source-filter synthesizer")
    elif engine == "espeak" and not espeak_available():
        parser.error("--engine espeak: espeak-ng is not installed (apt-get install espeak-ng)")
    root = Path(args.out)
    stamp = {
        "utterances_per_speaker": args.utterances_per_speaker,
        "seed": args.seed,
        "engine": engine,
        "version": 6,
    }
    stamp_file = root / "demo_corpus.json"
    if not args.force and stamp_file.is_file() and json.loads(stamp_file.read_text()) == stamp:
        print(f"{root}: demo corpus already generated ({stamp}); nothing to do (--force to redo)")
        return 0
    if root.exists():
        shutil.rmtree(root)

    t0 = time.time()
    utts = plan_corpus(args.utterances_per_speaker, args.seed)
    synth = synth_espeak if engine == "espeak" else synth_numpy
    waves: dict[str, np.ndarray] = {}
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        for u, wave in tqdm(
            zip(utts, pool.map(synth, utts), strict=True), total=len(utts), desc="synthesizing"
        ):
            waves[u.utt] = wave
    by_dialog: dict[str, list[Utterance]] = {}
    for u in utts:
        by_dialog.setdefault(u.dialog, []).append(u)
    for dialog, items in by_dialog.items():
        rng = np.random.default_rng([args.seed, len(dialog), sum(map(ord, dialog))])
        clock = float(rng.uniform(2, 6))
        for u in items:
            wave = waves[u.utt]
            u.start, u.end = clock, clock + len(wave) / SAMPLE_RATE
            clock = u.end + float(rng.uniform(0.3, 1.5))
            out = root / f"Session{u.session}" / "sentences" / "wav" / dialog / f"{u.utt}.wav"
            out.parent.mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            sf.write(buf, wave, SAMPLE_RATE, subtype="PCM_16", format="WAV")
            out.write_bytes(buf.getvalue())
        write_dialog_files(root, dialog, items, args.seed)
    stamp_file.write_text(json.dumps(stamp))

    counts = Counter((u.session, u.label) for u in utts)
    seconds = sum(len(w) for w in waves.values()) / SAMPLE_RATE
    print(
        f"wrote {len(utts)} utterances ({seconds / 60:.1f} min of speech, engine={engine}) to {root} in {time.time() - t0:.1f} s"
    )
    labels = sorted({u.label for u in utts})
    print("session " + " ".join(f"{lab:>4}" for lab in labels))
    for s in range(1, 6):
        print(f"{s:>7} " + " ".join(f"{counts[s, lab]:>4}" for lab in labels))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
