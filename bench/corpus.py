"""A generated corpus in the real file formats, IEMOCAP-sized by default: tones in noise.

    python bench/corpus.py --out /tmp/corpus --utterances 5531 --text_dim 768

Writes `<out>/manifest.csv` (FileName, Sentences, Label, text, AugmentedText), 16 kHz PCM-16
wavs in `<out>/wav/`, (1, T, text_dim) float32 embeddings in `<out>/emb/` and `<out>/emb_aug/`,
and (with --augmented_audio) one `<voice>_<FileName>.wav` per utterance in `<out>/wav_aug/`.
Lengths follow bench/workload.py (median 3.6 s); sessions are split like IEMOCAP's 5531
utterances (1085 / 1023 / 1151 / 1031 / 1241). For speed checks only: nothing here is speech.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.workload import augmented_lengths, utterance_lengths  # noqa: E402

SESSION_SHARES = np.array([1085, 1023, 1151, 1031, 1241]) / 5531
LABELS = ("hap", "ang", "neu", "sad", "exc")
WORDS = "you know i really did not think that it would go this way at all today".split()


def _wave(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / 16000
    wave = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * t) + 0.05 * rng.standard_normal(n)
    return wave.astype(np.float32)


def write_corpus(
    out: Path, utterances: int = 5531, text_dim: int = 768, augmented_audio: bool = False,
    seed: int = 0,
) -> dict[str, Path]:  # fmt: skip
    """Write the corpus (skipped if `out/manifest.csv` exists); return its paths."""
    paths = {k: out / k for k in ("wav", "emb", "emb_aug", "wav_aug")}
    paths["csv"] = out / "manifest.csv"
    if paths["csv"].exists():
        return paths
    for k in ("wav", "emb", "emb_aug", "wav_aug"):
        paths[k].mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lengths, aug = (
        utterance_lengths(utterances, seed),
        augmented_lengths(utterance_lengths(utterances, seed), seed),
    )
    sessions = np.repeat(
        np.arange(1, 6), np.maximum(1, np.round(SESSION_SHARES * utterances)).astype(int)
    )
    rows = []
    for i in range(utterances):
        name = f"Ses0{sessions[min(i, len(sessions) - 1)]}F_impro01_F{i:04d}"
        words = " ".join(rng.choice(WORDS, size=10))
        sf.write(paths["wav"] / f"{name}.wav", _wave(int(lengths[i]), rng), 16000, subtype="PCM_16")
        if augmented_audio:
            sf.write(paths["wav_aug"] / f"Ses05M_script01_M_{name}.wav", _wave(int(aug[i]), rng),
                     16000, subtype="PCM_16")  # fmt: skip
        for d in ("emb", "emb_aug"):
            emb = rng.standard_normal((1, 12, text_dim)).astype(np.float32)
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
