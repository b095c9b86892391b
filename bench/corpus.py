"""A generated corpus in the real file formats, IEMOCAP-sized by default: tones in noise.

    python -m bench.corpus --out /tmp/corpus --utterances 5531 --text_dim 768

Writes `<out>/manifest.csv` (FileName, Sentences, Label, text, AugmentedText), 16 kHz PCM-16
wavs in `<out>/wav/`, (1, tokens, text_dim) float32 embeddings in `<out>/emb/` and
`<out>/emb_aug/`, and (with --augmented_audio) one `<voice>_<FileName>.wav` per utterance in
`<out>/wav_aug/`, the TTS view the ACL loss trains on. Lengths follow a workload of
bench/workload.py (IEMOCAP-like by default: median 3.6 s); sessions are split like IEMOCAP's
5531 utterances (1085 / 1023 / 1151 / 1031 / 1241) unless `session_sizes` says otherwise.
Transcripts hold about 2.5 words per second (CTC targets as long as conversational speech's).
For speed checks only: nothing here is speech.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from bench.workload import BASE, SAMPLE_RATE, Workload, augmented_lengths

SESSION_SHARES = np.array([1085, 1023, 1151, 1031, 1241]) / 5531
LABELS = ("hap", "ang", "neu", "sad", "exc")
WORDS = "you know i really did not think that it would go this way at all today".split()
WORDS_PER_SECOND = 2.5


def _wave(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    wave = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * t) + 0.05 * rng.standard_normal(n)
    return wave.astype(np.float32)


def _sessions(utterances: int, session_sizes: list[int] | None) -> np.ndarray:
    """(utterances,) session number of each utterance."""
    if session_sizes is None:
        sizes = np.maximum(1, np.round(SESSION_SHARES * utterances)).astype(int)
    else:
        sizes = np.asarray(session_sizes, dtype=int)
        if len(sizes) != 5 or sizes.sum() != utterances:
            raise ValueError(
                f"session_sizes {session_sizes}: need 5 counts summing to {utterances}"
            )
    sessions = np.repeat(np.arange(1, 6), sizes)
    short = max(0, utterances - len(sessions))  # rounding: the rest go to session 5
    return np.concatenate([sessions, np.full(short, 5)])[:utterances]


def write_corpus(
    out: Path, utterances: int = 5531, text_dim: int = 768, augmented_audio: bool = False,
    seed: int = 0, *, workload: Workload = BASE, session_sizes: list[int] | None = None,
    tokens: int = 12,
) -> dict[str, Path]:  # fmt: skip
    """Write the corpus (skipped if `out/manifest.csv` exists); return its paths."""
    paths = {k: out / k for k in ("wav", "emb", "emb_aug", "wav_aug")}
    paths["csv"] = out / "manifest.csv"
    if paths["csv"].exists():
        return paths
    for k in ("wav", "emb", "emb_aug", "wav_aug"):
        paths[k].mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lengths = workload.lengths(utterances, seed)
    aug = augmented_lengths(lengths, seed)
    sessions = _sessions(utterances, session_sizes)
    rows = []
    for i in range(utterances):
        name = f"Ses0{sessions[i]}F_impro01_F{i:04d}"
        # at least 5 words: an embedding may not have more tokens than the sentence has bytes
        n_words = max(5, round(lengths[i] / SAMPLE_RATE * WORDS_PER_SECOND))
        words = " ".join(rng.choice(WORDS, size=n_words))
        sf.write(paths["wav"] / f"{name}.wav", _wave(int(lengths[i]), rng), SAMPLE_RATE,
                 subtype="PCM_16")  # fmt: skip
        if augmented_audio:
            sf.write(paths["wav_aug"] / f"Ses05M_script01_M_{name}.wav", _wave(int(aug[i]), rng),
                     SAMPLE_RATE, subtype="PCM_16")  # fmt: skip
        for d in ("emb", "emb_aug"):
            emb = rng.standard_normal((1, tokens, text_dim)).astype(np.float32)
            np.save(paths[d] / f"{name}.npy", emb)
        rows.append({"FileName": name, "Sentences": words, "Label": LABELS[i % len(LABELS)],
                     "text": words.upper(), "AugmentedText": words})  # fmt: skip
    pd.DataFrame(rows).to_csv(paths["csv"], index=False)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--utterances", type=int, default=5531)
    p.add_argument("--text_dim", type=int, default=768)
    p.add_argument("--augmented_audio", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    paths = write_corpus(a.out, a.utterances, a.text_dim, a.augmented_audio, a.seed)
    print(f"corpus: {paths['csv']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
