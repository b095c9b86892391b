"""Token embeddings of the transcripts (and paraphrases) with any HF encoder, as the authors shipped them.

    python data_prep/embed_text.py --csv data/iemocap.csv --model roberta-base \
        --out_dir data/roberta --aug_out_dir data/roberta_augmented

Writes `<out_dir>/<FileName>.npy` for `Sentences` and `<aug_out_dir>/<FileName>.npy` for
`AugmentedText`: float32 (1, T, hidden) last-layer states including the special tokens
(<s> ... </s> for RoBERTa, [CLS] ... [SEP] for BERT-style models), unpadded. `--model` may be a
local directory (loaded offline). Files already present are skipped; `--overwrite` redoes them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from utils.manifest import read_manifest  # noqa: E402


def load_encoder(model: str, device: str) -> tuple[object, torch.nn.Module]:
    """(tokenizer, model) from a hub name or a local directory (local dirs never touch the network)."""
    from transformers import AutoModel, AutoTokenizer

    local = Path(model).is_dir()
    tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=local)
    encoder = AutoModel.from_pretrained(model, local_files_only=local).to(device).eval()
    return tokenizer, encoder


@torch.no_grad()
def embed(
    texts: list[str], tokenizer, encoder, device: str, max_length: int = 512
) -> list[np.ndarray]:
    """Last hidden states per text: a list of float32 (1, T_i, hidden), padding removed."""
    enc = tokenizer(
        texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    enc = {k: v.to(device) for k, v in enc.items()}
    hidden = encoder(**enc).last_hidden_state.float().cpu().numpy()  # (batch, T, hidden)
    # tokenizers pad on the right or on the left; keep the real positions either way
    mask = enc["attention_mask"].bool().cpu().numpy()
    return [hidden[i][mask[i]][None].astype(np.float32) for i in range(len(texts))]


def embed_column(df, column: str, out_dir: Path, tokenizer, encoder, args) -> tuple[int, int]:
    """Embed `df[column]` into `out_dir`; returns (written, skipped-as-present)."""
    out_dir.mkdir(parents=True, exist_ok=True)
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
        arrays = embed(
            [text for _, text in chunk], tokenizer, encoder, args.device, args.max_length
        )
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
    tokenizer, encoder = load_encoder(args.model, args.device)
    jobs = [("Sentences", Path(args.out_dir))]
    if args.aug_out_dir:
        jobs.append(("AugmentedText", Path(args.aug_out_dir)))
    for column, out_dir in jobs:
        written, present = embed_column(df, column, out_dir, tokenizer, encoder, args)
        print(f"{column}: wrote {written}, kept {present} existing -> {out_dir}")
    print(f"hidden size {encoder.config.hidden_size}, model {args.model}, {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
