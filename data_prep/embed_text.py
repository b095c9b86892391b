"""Token embeddings of the transcripts (and paraphrases) with any HF encoder, as the authors shipped them.

    python -m data_prep.embed_text --csv data/iemocap.csv --model roberta-base \
        --out_dir data/roberta --aug_out_dir data/roberta_augmented

Writes `<out_dir>/<FileName>.npy` for `Sentences` and `<aug_out_dir>/<FileName>.npy` for
`AugmentedText`: float32 (1, T, hidden) last-layer states including the special tokens
(<s> ... </s> for RoBERTa, [CLS] ... [SEP] for BERT-style models), unpadded. `--model` may be a
local directory (loaded offline). Files already present are skipped; `--overwrite` redoes them.
Each output directory gets `text_encoder.json` (the encoder's name, width and, for a local
directory, a hash of its weights): checkpoints trained on these embeddings record it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from data_prep.cli import run
from models.text_encoder import TextEncoder, TextEncoderError, read_info, write_info
from training.manifest import read_manifest


def embed_column(df, column: str, out_dir: Path, encoder: TextEncoder, args) -> tuple[int, int]:
    """Embed `df[column]` into `out_dir`; returns (written, skipped-as-present)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    made_by = read_info(out_dir)
    if made_by is not None and not made_by.same_encoder_as(encoder.info) and not args.overwrite:
        raise TextEncoderError(
            f"{out_dir} holds embeddings of {made_by.describe()}, not of "
            f"{encoder.info.describe()}: use another --out_dir, or --overwrite"
        )
    write_info(out_dir, encoder.info)
    todo = [
        (name, text)
        for name, text in zip(df["FileName"], df[column], strict=True)
        if args.overwrite or not (out_dir / f"{name}.npy").is_file()
    ]
    # sort by length so each batch pads little
    todo.sort(key=lambda item: len(item[1]))
    for start in tqdm(
        range(0, len(todo), args.batch_size), desc=f"{column} -> {out_dir}", disable=not todo
    ):
        chunk = todo[start : start + args.batch_size]
        arrays = encoder([text for _, text in chunk])
        for (name, _), arr in zip(chunk, arrays, strict=True):
            tmp = out_dir / f"{name}.tmp.npy"
            np.save(tmp, arr)
            tmp.replace(out_dir / f"{name}.npy")
    return len(todo), len(df) - len(todo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--csv", default="data/iemocap.csv")
    parser.add_argument("--model", default="roberta-base", help="HF name or local model directory")
    parser.add_argument("--out_dir", default="data/roberta", help="embeddings of Sentences")
    parser.add_argument(
        "--aug_out_dir",
        default="data/roberta_augmented",
        help="embeddings of AugmentedText ('' to skip)",
    )
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)

    t0 = time.time()
    df = read_manifest(args.csv)
    try:
        encoder = TextEncoder(args.model, args.device, args.max_length)
    except TextEncoderError as err:
        parser.exit(2, f"error: {err}\n")
    jobs = [("Sentences", Path(args.out_dir))]
    if args.aug_out_dir:
        jobs.append(("AugmentedText", Path(args.aug_out_dir)))
    for column, out_dir in jobs:
        try:
            written, present = embed_column(df, column, out_dir, encoder, args)
        except TextEncoderError as err:
            parser.exit(2, f"error: {err}\n")
        print(f"{column}: wrote {written}, kept {present} existing -> {out_dir}")
    print(f"{encoder.info.describe()}, {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
