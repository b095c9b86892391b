"""Evaluate a trained MMER model on a held-out session, or predict emotions for new audio.

Evaluate (what `bash infer.sh` runs):
    python infer.py evaluate --session 1 --config configs/mmer.yaml --csv_path data/iemocap.csv \
        --data_path_audio data/iemocap --data_path_roberta data/roberta \
        --checkpoint_path exp/mmer/fold1/best --predictions preds.csv

Predict for new files (transcript embedded on the fly with the text encoder that made the
training embeddings):
    python infer.py predict --checkpoint exp/mmer/fold1/best --wav a.wav --text "I am so happy" \
        --text_model roberta-base --output probs.json

CHECKPOINT is this project's checkpoint directory (model.safetensors + config.json) or one
of the authors' released `.pt` files (then the model architecture comes from --config; the
file holds the encoder weights, so nothing is downloaded).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch

from models.checkpoint import CheckpointError, is_native_checkpoint, load_model
from models.mmer import MMERModel
from utils import audio as audio_io
from utils.batch import View
from utils.data import MMERDataset, build_loader
from utils.errors import MMERError
from utils.evaluation import predict, to_inference_precision
from utils.experiment import Experiment, load_experiment
from utils.io import write_json_atomic
from utils.manifest import DataError, format_skipped, read_manifest, select_sessions
from utils.metrics import CLASS_NAMES
from utils.precision import PRECISIONS, resolve_device, resolve_precision
from utils.reporting import write_predictions_csv


def load_for_inference(
    checkpoint: str, config_path: str | None, device: torch.device
) -> tuple[MMERModel, Experiment]:
    """The model (eval mode) and the experiment settings used for data loading."""
    exp = load_experiment(config_path) if config_path else Experiment()
    if not is_native_checkpoint(checkpoint) and config_path is None:
        raise CheckpointError(
            f"{checkpoint}: an authors' checkpoint needs --config (e.g. configs/mmer.yaml)"
        )
    return load_model(checkpoint, exp.model, device), exp


# -- evaluate ------------------------------------------------------------------------------
def evaluate(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    model, exp = load_for_inference(args.checkpoint_path, args.config, device)
    model = to_inference_precision(model, precision)
    rows = select_sessions(
        read_manifest(args.csv_path, on_bad_input=args.on_bad_input), [args.session]
    )
    dataset = MMERDataset(
        rows,
        args.data_path_audio,
        args.data_path_roberta,
        text_dim=model.config.text_dim,
        max_audio_samples=exp.data.max_audio_samples,
        on_bad_input=args.on_bad_input,
    )
    loader = build_loader(dataset, args.batch_size, pad_quantum=exp.data.pad_quantum)
    preds = predict(model, loader, device, precision)
    metrics = preds.metrics()
    report = {
        "session": args.session,
        "checkpoint": str(args.checkpoint_path),
        "precision": precision,
        **metrics,
        "skipped": [list(x) for x in dataset.skipped],
    }
    print(format_report(report))
    # beside --predictions, else in the directory the command is run from (never the code's)
    json_path = Path(
        args.json
        or (
            Path(args.predictions).with_suffix(".json")
            if args.predictions
            else Path.cwd() / f"eval_session{args.session}.json"
        )
    )
    write_json_atomic(json_path, report)
    print(f"metrics: {json_path}")
    if args.predictions:
        write_predictions_csv(preds, args.predictions)
        print(f"predictions: {args.predictions}")
    return 0


def format_report(r: dict) -> str:
    names = CLASS_NAMES[: len(r["confusion"])]
    lines = [
        f"Session {r['session']}: {r['n']} utterances ({r['precision']})",
        f"  WA (accuracy)          {100 * r['wa']:.2f}",
        f"  UA (mean class recall) {100 * r['ua']:.2f}",
        f"  macro-F1               {100 * r['macro_f1']:.2f}",
        "  recall: " + "  ".join(f"{k} {100 * v:.1f}" for k, v in r["recall"].items()),
        "  confusion (rows true, columns predicted):",
        "        " + "".join(f"{n:>6}" for n in names),
    ]
    lines += [
        f"    {n:>4}" + "".join(f"{v:>6}" for v in row)
        for n, row in zip(names, r["confusion"], strict=True)
    ]
    if r.get("skipped"):
        lines.append(format_skipped(r["skipped"]))
    return "\n".join(lines)


# -- predict -------------------------------------------------------------------------------
def read_requests(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    """(wav path, transcript or None) pairs from --wav/--text or a CSV with columns wav,text."""
    if args.csv:
        with open(args.csv, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or "wav" not in reader.fieldnames:
                raise DataError(f"{args.csv}: expected a header with columns wav[,text]")
            return [(row["wav"], row.get("text") or None) for row in reader]
    if not args.wav:
        raise DataError("give --wav FILE [FILE ...] or --csv FILE")
    if args.text is not None and len(args.text) not in (1, len(args.wav)):
        raise DataError(f"--text: give one transcript, or one per wav ({len(args.wav)})")
    texts = args.text or [None]
    texts = texts * len(args.wav) if len(texts) == 1 else texts
    return list(zip(args.wav, texts, strict=True))


def predict_files(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    model, exp = load_for_inference(args.checkpoint, args.config, device)
    model = to_inference_precision(model, precision)
    dtype = next(model.parameters()).dtype
    requests = read_requests(args)
    needs_text = model.config.uses_text
    if needs_text and any(t is None for _, t in requests):
        raise DataError(
            'this model uses the transcript as well as the audio: give --text "..." (or a text '
            "column in --csv). Only a model trained with --modalities audio works without one."
        )
    embedder = TextEmbedder(args.text_model, device) if needs_text else None
    results = []
    for wav, text in requests:
        # cut and normalised exactly as evaluation does (utils.data.MMERDataset)
        wave = audio_io.normalize(audio_io.crop(audio_io.load(wav), exp.data.max_audio_samples))
        audio = torch.from_numpy(wave)[None]
        if embedder is not None:
            emb = embedder(text)
            if emb.shape[-1] != model.config.text_dim:
                raise DataError(
                    f"--text_model {args.text_model} gives {emb.shape[-1]}-d embeddings; the model "
                    f"expects {model.config.text_dim} (use the encoder that made its training embeddings)"
                )
        else:
            emb = torch.zeros(1, 1, model.config.text_dim)
        mask = torch.ones(emb.shape[:2], dtype=torch.bool)
        view = View(audio, torch.tensor([audio.shape[1]]), emb, mask).astype(dtype)
        with torch.inference_mode():
            logits = model(view.to(device)).logits.float().cpu()[0]
        probs = logits.softmax(-1).numpy()
        results.append({"wav": wav, "text": text, "pred": CLASS_NAMES[int(probs.argmax())],
                        "probs": {c: float(p) for c, p in zip(CLASS_NAMES, probs, strict=True)}})  # fmt: skip
    for r in results:
        shown = "  ".join(f"{c} {p:.3f}" for c, p in r["probs"].items())
        print(f"{r['wav']}: {r['pred']}  ({shown})")
    if args.output:
        write_outputs(results, args.output)
        print(f"written: {args.output}")
    return 0


class TextEmbedder:
    """Token embeddings of a transcript, exactly as data_prep/embed_text.py writes them."""

    def __init__(self, model_name: str, device: torch.device):
        from data_prep.embed_text import load_encoder

        self.device = str(device)
        self.tokenizer, self.encoder = load_encoder(model_name, self.device)

    @torch.inference_mode()
    def __call__(self, text: str) -> torch.Tensor:
        from data_prep.embed_text import embed

        return torch.from_numpy(
            embed([text], self.tokenizer, self.encoder, self.device)[0]
        )  # (1, T, D)


def write_outputs(results: list[dict], path: str) -> None:
    if path.endswith(".csv"):
        lines = ["wav,pred," + ",".join(f"p_{c}" for c in CLASS_NAMES)]
        lines += [
            f"{r['wav']},{r['pred']}," + ",".join(f"{r['probs'][c]:.6f}" for c in CLASS_NAMES)
            for r in results
        ]
        Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        write_json_atomic(path, results)


# -- CLI -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("evaluate", help="metrics and predictions on one session of a manifest")
    e.add_argument("--session", type=int, required=True, choices=range(1, 6))
    e.add_argument(
        "--config",
        "--config_path",
        dest="config",
        help="experiment YAML (needed for the authors' .pt)",
    )
    e.add_argument("--csv_path", required=True)
    e.add_argument("--data_path_audio", required=True)
    e.add_argument("--data_path_roberta", required=True)
    e.add_argument("--checkpoint_path", required=True)
    e.add_argument("--predictions", help="write per-utterance predictions (CSV)")
    e.add_argument("--json", help="write the metrics here (default: beside --predictions)")
    e.add_argument("--batch_size", type=int, default=8, help="utterances per batch (length-sorted)")
    e.add_argument("--on_bad_input", choices=("error", "skip"), default="error")
    q = sub.add_parser("predict", help="class probabilities for new wav files")
    q.add_argument("--checkpoint", required=True)
    q.add_argument("--config", help="experiment YAML (needed for the authors' .pt)")
    q.add_argument("--wav", nargs="+")
    q.add_argument("--text", nargs="+", help="transcript(s): one for all wavs or one per wav")
    q.add_argument("--csv", help="CSV with columns wav,text (instead of --wav/--text)")
    q.add_argument(
        "--text_model", default="roberta-base", help="HF id or local dir of the text encoder"
    )
    q.add_argument("--output", help="write results (.json or .csv)")
    for sp in (e, q):
        sp.add_argument("--device", default="auto")
        sp.add_argument(
            "--precision",
            choices=PRECISIONS,
            default="auto",
            help="auto: bf16 where the hardware runs it natively",
        )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return evaluate(args) if args.command == "evaluate" else predict_files(args)
    except (MMERError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    np.set_printoptions(suppress=True)
    sys.exit(main())
