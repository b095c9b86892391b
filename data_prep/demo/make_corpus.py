"""Synthesize a small corpus laid out exactly like IEMOCAP_full_release, for the offline demo.

    python -m data_prep.demo.make_corpus --out data/demo/IEMOCAP_full_release

5 sessions x 2 speakers (F, M); per session improvised (`Ses01F_impro01`) and scripted
(`Ses01F_script01_1`) dialogs, each spoken by its own eSpeak NG voice per speaker (40 distinct
voices: 8 accents x 5 female variants, none shared between dialogs); EmoEvaluation
and transcription files in the real formats (header, annotator lines, some CRLF), a few `exc`
rows (class happy) and `xxx` rows (dropped by preparation). Emotion sets the prosody: pitch
level, pitch range, speaking rate (loudness too, but per-utterance normalisation removes it).
Transcripts carry an emotion phrase only about half of the time; word count is independent of
the class. Speech comes from libespeak-ng of the pinned wheel espeakng-loader
(data_prep/espeak.py); without it the script stops and says what to install. The output is
byte-identical for a given seed and library version; re-running with the same arguments does
nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from tqdm import tqdm

from data_prep.cli import run
from data_prep.demo.text import make_sentence
from data_prep.espeak import (
    Espeak,
    Prosody,
    Request,
    SynthesizerUnavailable,
    synthesize_many,
    trim_trailing_silence,
)

SAMPLE_RATE = 16000
CLASSES = ("hap", "ang", "neu", "sad")
# eSpeak NG settings per class: pitch (0-99), SSML pitch range, rate (words/min), amplitude
# (the espeak-ng program's -p, -s, -a; data_prep/espeak.py passes them to espeak_SetParameter).
# Adjacent classes are ~5 semitones and ~1.3x in rate apart, more than the voices differ.
ESPEAK_PROSODY = {
    "sad": {"pitch": 10, "range": "x-low", "rate": 115, "amp": 60},
    "neu": {"pitch": 35, "range": "low", "rate": 155, "amp": 100},
    "hap": {"pitch": 90, "range": "x-high", "rate": 205, "amp": 130},
    "ang": {"pitch": 60, "range": "high", "rate": 270, "amp": 170},
}
# Accents (eSpeak NG voices). Not "en-gb": that is a language, not a voice name (the espeak-ng
# program resolved "en-gb+<variant>" to one male voice whatever the variant; data_prep/espeak.py
# refuses it). "en" is the British voice that honours the variant.
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
    name: str  # eSpeak NG voice spec, e.g. en-us+f3
    pitch_offset: int  # added to the class pitch (-p units)
    rate_factor: float  # multiplies the class rate


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
                )
                # unused, still drawn so that the plan (voices, labels, sentences) stays
                # that of earlier corpus versions (docs/data.md)
                rng.uniform(180, 230)
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


def espeak_request(u: Utterance) -> Request:
    """The class prosody with speaker and utterance jitter, as a libespeak-ng request."""
    rng = np.random.default_rng(u.seed)
    p = ESPEAK_PROSODY[_class_of(u.label, rng)]
    pitch = int(np.clip(p["pitch"] + u.voice.pitch_offset + rng.integers(-4, 5), 0, 99))
    rate = int(p["rate"] * u.voice.rate_factor * rng.uniform(0.95, 1.05))
    prosody = Prosody(rate=rate, volume=p["amp"], pitch=pitch)
    return Request(u.text, u.voice.name, prosody, ssml_range=p["range"])


def to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    """int16 at the synthesizer's rate -> float32 at 16 kHz."""
    wave = samples.astype(np.float32) / 32768.0
    return soxr.resample(wave, rate, SAMPLE_RATE).astype(np.float32)


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
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="synthesis processes (one is enough for the demo's 400 utterances)",
    )
    parser.add_argument("--force", action="store_true", help="regenerate even if the corpus exists")
    args = parser.parse_args(argv)

    try:
        espeak = Espeak()
    except SynthesizerUnavailable as exc:
        print(f"data_prep.demo.make_corpus: cannot make the demo corpus: {exc}", file=sys.stderr)
        return 2
    root = Path(args.out)
    # what each version changed: docs/data.md, "The demo corpus"
    stamp = {
        "utterances_per_speaker": args.utterances_per_speaker,
        "seed": args.seed,
        "engine": f"libespeak-ng {espeak.version}",
        "version": 7,
    }
    stamp_file = root / "demo_corpus.json"
    if not args.force and stamp_file.is_file() and json.loads(stamp_file.read_text()) == stamp:
        print(f"{root}: demo corpus already generated ({stamp}); nothing to do (--force to redo)")
        return 0
    if root.exists():
        shutil.rmtree(root)

    t0 = time.time()
    utts = plan_corpus(args.utterances_per_speaker, args.seed)
    speech = synthesize_many(espeak, [espeak_request(u) for u in utts], args.jobs)
    waves: dict[str, np.ndarray] = {}
    for u, samples in tqdm(zip(utts, speech, strict=True), total=len(utts), desc="synthesizing"):
        waves[u.utt] = to_16k(
            trim_trailing_silence(samples, espeak.sample_rate), espeak.sample_rate
        )
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
        f"wrote {len(utts)} utterances ({seconds / 60:.1f} min of speech, {stamp['engine']}) to {root} in {time.time() - t0:.1f} s"
    )
    labels = sorted({u.label for u in utts})
    print("session " + " ".join(f"{lab:>4}" for lab in labels))
    for s in range(1, 6):
        print(f"{s:>7} " + " ".join(f"{counts[s, lab]:>4}" for lab in labels))
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
