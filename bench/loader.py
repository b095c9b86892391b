"""The training data loader alone, in utterances per second (no model).

    python -m bench.loader --corpus /tmp/corpus --workers 0 2 --batch_size 2

Reads a corpus written by bench/corpus.py: decoding, crop, normalisation, the augmented
view (TTS wavs if the corpus has them, else the signal-level fallback), embeddings, collate
and (with --pin) page-locked batches. Prints one JSON line per worker count.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from training.data import MMERDataset, build_loader, set_epoch


def measure(
    corpus: Path, workers: int, batch_size: int, limit: int, pin: bool, text_dim: int
) -> dict:
    aug = corpus / "wav_aug"
    ds = MMERDataset(corpus / "manifest.csv", corpus / "wav", corpus / "emb", text_dim=text_dim,
                     training=True, aug_text_dir=corpus / "emb_aug",
                     aug_audio_dir=aug if aug.is_dir() and any(aug.iterdir()) else None,
                     log=lambda msg: None)  # fmt: skip
    loader = build_loader(ds, batch_size, num_workers=workers, pin_memory=pin,
                          prefetch_factor=4 if workers else None)  # fmt: skip
    set_epoch(loader, 0)
    n, audio_s, start = 0, 0.0, None
    for i, batch in enumerate(loader):
        if i == workers:  # the workers' first batches include their start-up
            start, n, audio_s = time.perf_counter(), 0, 0.0
        n += len(batch)
        audio_s += float(batch.view.audio_lengths.sum()) / 16000
        if n >= limit and start is not None:
            break
    elapsed = time.perf_counter() - (start or time.perf_counter())
    return {"workers": workers, "utterances": n, "utt_per_s": round(n / elapsed, 1),
            "audio_s_per_s": round(audio_s / elapsed, 1), "pinned": pin,
            "augmented_view": "tts wavs" if ds.aug_audio else "signal-level fallback",
            "cpus": len(os.sched_getaffinity(0))}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--corpus", required=True, type=Path)
    p.add_argument("--workers", type=int, nargs="+", default=[0])
    p.add_argument("--batch_size", type=int, default=2)
    p.add_argument("--limit", type=int, default=400, help="utterances to time")
    p.add_argument("--pin", action="store_true", help="pinned batches (needs CUDA)")
    p.add_argument("--text_dim", type=int, default=768)
    a = p.parse_args(argv)
    for w in a.workers:
        print(
            json.dumps(measure(a.corpus, w, a.batch_size, a.limit, a.pin, a.text_dim)), flush=True
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
