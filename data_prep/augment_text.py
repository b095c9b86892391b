"""Paraphrases by back-translation (English -> French -> English) into the CSV's AugmentedText.

    python -m data_prep.augment_text --csv data/iemocap.csv --model facebook/nllb-200-distilled-600M

Any HF seq2seq translation model: a multilingual one (NLLB-200: codes eng_Latn/fra_Latn; M2M100:
en/fr) given as `--model`, or a pair of one-direction models (Marian opus-mt-en-fr /
opus-mt-fr-en) given as `--forward_model` and `--backward_model`. Each direction samples 5
candidates (do_sample, num_return_sequences=5); for each sentence the first back-translation
that differs from the source (ignoring case and punctuation) is kept, else the first one.
Idempotent: rows whose AugmentedText already differs from Sentences are kept unless
--overwrite. The CSV is rewritten atomically with its other columns unchanged.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from data_prep.cli import run
from training.manifest import REQUIRED_COLUMNS, DataError


class Translator:
    """One translation direction: `translate(texts)` -> `num_candidates` sampled outputs per text."""

    def __init__(
        self, tokenizer, model, src_lang: str | None, tgt_lang: str | None, device: str = "cpu"
    ) -> None:
        self.tokenizer, self.model, self.device = tokenizer, model.to(device).eval(), device
        self.src_lang, self.tgt_lang = src_lang, tgt_lang

    @classmethod
    def load(cls, name: str, src_lang: str | None, tgt_lang: str | None, device: str) -> Translator:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        local = Path(name).is_dir()
        tok = AutoTokenizer.from_pretrained(name, local_files_only=local)
        model = AutoModelForSeq2SeqLM.from_pretrained(name, local_files_only=local)
        return cls(tok, model, src_lang, tgt_lang, device)

    def _forced_bos(self) -> int | None:
        if not self.tgt_lang:
            return None
        if hasattr(self.tokenizer, "get_lang_id"):  # M2M100
            return self.tokenizer.get_lang_id(self.tgt_lang)
        token_id = self.tokenizer.convert_tokens_to_ids(
            self.tgt_lang
        )  # NLLB: language codes are tokens
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            raise DataError(f"target language {self.tgt_lang!r} is not a token of this tokenizer")
        return token_id

    @torch.no_grad()
    def translate(
        self, texts: list[str], num_candidates: int = 5, max_new_tokens: int = 128
    ) -> list[list[str]]:
        if self.src_lang and hasattr(self.tokenizer, "src_lang"):
            self.tokenizer.src_lang = self.src_lang
        enc = self.tokenizer(
            texts, return_tensors="pt", padding=True, truncation=True, max_length=256
        )
        enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        out = self.model.generate(
            **enc,
            do_sample=True,
            num_return_sequences=num_candidates,
            max_new_tokens=max_new_tokens,
            forced_bos_token_id=self._forced_bos(),
        )
        decoded = self.tokenizer.batch_decode(out, skip_special_tokens=True)
        return [
            [d.strip() for d in decoded[i * num_candidates : (i + 1) * num_candidates]]
            for i in range(len(texts))
        ]


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def choose(source: str, candidates: list[str]) -> str:
    """The first non-empty candidate that differs from `source`; else the first non-empty; else `source`."""
    nonempty = [c for c in candidates if c.strip()]
    for cand in nonempty:
        if _key(cand) != _key(source):
            return cand
    return nonempty[0] if nonempty else source


def back_translate(
    texts: list[str],
    forward: Translator,
    backward: Translator,
    num_candidates: int = 5,
    max_new_tokens: int = 128,
) -> list[str]:
    """One paraphrase per text: num_candidates pivots, each back-translated num_candidates times."""
    pivots = forward.translate(texts, num_candidates, max_new_tokens)
    out = []
    for text, cands in zip(texts, pivots, strict=True):
        pivot = choose(text, cands)
        out.append(choose(text, backward.translate([pivot], num_candidates, max_new_tokens)[0]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--csv", default="data/iemocap.csv")
    parser.add_argument(
        "--model",
        default="facebook/nllb-200-distilled-600M",
        help="multilingual model (both directions)",
    )
    parser.add_argument("--forward_model", help="source->pivot model (Marian-style pairs)")
    parser.add_argument("--backward_model", help="pivot->source model")
    parser.add_argument(
        "--src_lang", default="eng_Latn", help="'' for models without language codes"
    )
    parser.add_argument("--pivot_lang", default="fra_Latn")
    parser.add_argument("--num_candidates", type=int, default=5)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_new_tokens", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--overwrite", action="store_true", help="redo rows that already have a paraphrase"
    )
    args = parser.parse_args(argv)

    t0 = time.time()
    csv = Path(args.csv)
    df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{csv}: missing column(s) {missing}")
    torch.manual_seed(args.seed)
    src, pivot = args.src_lang or None, args.pivot_lang or None
    if args.forward_model or args.backward_model:
        if not (args.forward_model and args.backward_model):
            parser.error("--forward_model and --backward_model go together")
        fwd = Translator.load(args.forward_model, src, pivot, args.device)
        bwd = Translator.load(args.backward_model, pivot, src, args.device)
    else:
        fwd = Translator.load(args.model, src, pivot, args.device)
        bwd = Translator(fwd.tokenizer, fwd.model, pivot, src, args.device)
    todo = [
        i
        for i, (s, a) in enumerate(zip(df["Sentences"], df["AugmentedText"], strict=True))
        if s.strip() and (args.overwrite or not a.strip() or a == s)
    ]
    for start in tqdm(range(0, len(todo), args.batch_size), desc="back-translation"):
        rows = todo[start : start + args.batch_size]
        df.loc[rows, "AugmentedText"] = back_translate(
            df.loc[rows, "Sentences"].tolist(), fwd, bwd, args.num_candidates, args.max_new_tokens
        )
    tmp = csv.with_suffix(".tmp")
    # keep the authors' unnamed index column unnamed
    df.rename(columns=lambda c: "" if c.startswith("Unnamed: ") else c).to_csv(tmp, index=False)
    tmp.replace(csv)
    changed = int((df["AugmentedText"] != df["Sentences"]).sum())
    print(
        f"paraphrased {len(todo)} row(s), kept {len(df) - len(todo)}; {changed}/{len(df)} differ from Sentences ({time.time() - t0:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
