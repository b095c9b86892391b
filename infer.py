"""Evaluate a trained MMER model on a held-out session, predict emotions for new audio, or
export it to ONNX. Every command goes through `inference.Predictor`.

Evaluate (what `bash infer.sh` runs):
    python infer.py evaluate --session 1 --config configs/mmer.yaml --csv_path data/iemocap.csv \
        --audio_dir data/iemocap --text_dir data/roberta \
        --checkpoint_path exp/mmer/fold1/best --predictions preds.csv
    ... --transcripts asr [--asr_model ID_OR_DIR]   # ASR transcripts instead of the manifest's

Predict for new files (the transcript is embedded with the checkpoint's text encoder; without
one, an ASR model makes it):
    python infer.py predict --checkpoint exp/mmer/fold1/best --wav a.wav --text "I am so happy" \
        --output probs.json
    python infer.py predict --checkpoint exp/mmer/fold1/best --csv files.csv --output out.csv

Export (then `predict --checkpoint mmer.onnx` runs it with onnxruntime):
    python infer.py export --checkpoint exp/mmer/fold1/best --format onnx --output mmer.onnx

CHECKPOINT is this project's checkpoint directory, one of the authors' released `.pt` files
(then the architecture comes from --config; the file holds the encoder weights, so nothing is
downloaded), or an exported `.onnx` file.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np

from inference.predictor import Prediction, Predictor, Request
from models.checkpoint import CheckpointError, is_native_checkpoint
from training.corpus import CORPORA
from training.data import MMERDataset, build_loader
from training.evaluation import Predictions
from training.experiment import Experiment, load_experiment
from training.flags import add_flag
from training.manifest import DataError, format_skipped, read_manifest, select_groups
from utils.errors import MMERError
from utils.io import write_json_atomic, write_text_atomic
from utils.memory import retain_freed_memory
from utils.precision import PRECISIONS
from utils.reporting import write_predictions_csv


def load_predictor(args: argparse.Namespace, checkpoint: str) -> Predictor:
    config_path = getattr(args, "config", None)
    exp = load_experiment(config_path) if config_path else Experiment()
    native = is_native_checkpoint(checkpoint) or checkpoint.endswith(".onnx")
    if not native and config_path is None:
        raise CheckpointError(
            f"{checkpoint}: an authors' checkpoint needs --config (e.g. configs/mmer.yaml)"
        )
    return Predictor.load(
        checkpoint,
        config=exp.model,
        experiment_data=exp.data,
        device=args.device,
        precision=args.precision,
        text_model=getattr(args, "text_model", None),
        asr_model=getattr(args, "asr_model", None),
        batch_size=getattr(args, "batch_size", 8),
    )


# -- evaluate ------------------------------------------------------------------------------
def evaluate(args: argparse.Namespace) -> int:
    predictor = load_predictor(args, args.checkpoint_path)
    corpus = CORPORA[args.corpus]
    group = args.session
    if corpus.protocol == "leave_one_group_out":
        if not args.session.isdigit():
            raise DataError(
                f"--session {args.session!r}: expected a session number ({corpus.name})"
            )
        group = int(args.session)
    manifest = read_manifest(args.csv_path, on_bad_input=args.on_bad_input, corpus=corpus)
    rows = select_groups(manifest, [group])
    if args.transcripts == "asr":
        preds, skipped = evaluate_with_asr(predictor, rows, args)
    else:
        dataset = MMERDataset(
            rows,
            args.audio_dir,
            args.text_dir,
            text_dim=predictor.config.text_dim,
            max_audio_samples=predictor.info.max_audio_samples,
            on_bad_input=args.on_bad_input,
        )
        loader = build_loader(dataset, args.batch_size, pad_quantum=predictor.info.pad_quantum)
        preds, skipped = predictor.evaluate(loader), dataset.skipped
    report = {
        "corpus": args.corpus,
        "session": group,
        "checkpoint": str(args.checkpoint_path),
        "precision": getattr(predictor.backend, "precision", "fp32 (onnxruntime)"),
        "transcripts": args.transcripts,
        **preds.metrics(),
        "skipped": [list(x) for x in skipped],
    }
    print(format_report(report, predictor.info.class_names))
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


def evaluate_with_asr(predictor: Predictor, rows, args) -> tuple[Predictions, list]:
    """The paper's ASR-transcript experiment: each utterance's transcript comes from ASR
    and is embedded with the checkpoint's text encoder (the manifest's text is not used)."""
    audio_dir = Path(args.audio_dir)
    requests = [Request(audio_dir / f"{name}.wav") for name in rows["FileName"]]
    skipped: list[tuple[str, str]] = []
    results = predictor.predict_many(requests, args.on_bad_input, skipped, progress=True)
    kept = {r.source for r in results}
    labels = [int(lab) for name, lab in zip(rows["FileName"], rows["label"], strict=True)
              if str(audio_dir / f"{name}.wav") in kept]  # fmt: skip
    names = [Path(r.source).stem for r in results]
    logits = np.array([r.logits for r in results], dtype=np.float32)
    return Predictions(names, np.array(labels), logits), skipped


def format_report(r: dict, names: list[str]) -> str:
    lines = [
        f"{r['corpus']} {r['session']}: {r['n']} utterances ({r['precision']}, "
        f"{r['transcripts']} transcripts)",
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
def read_requests(args: argparse.Namespace) -> list[Request]:
    """Requests from --wav/--text or a CSV with columns wav[,text] (relative to the CSV)."""
    if args.csv:
        path = Path(args.csv)
        try:
            with path.open(newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                if reader.fieldnames is None or "wav" not in reader.fieldnames:
                    raise DataError(f"{path}: expected a header with columns wav[,text]")
                rows = list(reader)
        except (OSError, UnicodeDecodeError) as err:
            raise DataError(f"{path}: not a readable UTF-8 CSV ({err})") from None
        return [Request(path.parent / r["wav"], text=r.get("text") or None) for r in rows]
    if not args.wav:
        raise DataError("give --wav FILE [FILE ...] or --csv FILE")
    if args.text is not None and len(args.text) not in (1, len(args.wav)):
        raise DataError(f"--text: give one transcript, or one per wav ({len(args.wav)})")
    texts = args.text or [None]
    texts = texts * len(args.wav) if len(texts) == 1 else texts
    return [Request(w, text=t) for w, t in zip(args.wav, texts, strict=True)]


def predict_files(args: argparse.Namespace) -> int:
    predictor = load_predictor(args, args.checkpoint)
    requests = read_requests(args)
    skipped: list[tuple[str, str]] = []
    results = predictor.predict_many(
        requests, args.on_bad_input, skipped, progress=len(requests) > 1
    )
    for r in results:
        shown = "  ".join(f"{c} {p:.3f}" for c, p in r.probabilities.items())
        heard = f'  [{r.text_source}: "{r.text}"]' if r.text_source == "asr" else ""
        print(f"{r.source}: {r.label}  ({shown}){heard}")
    if skipped:
        print(format_skipped(skipped))
    if args.output:
        write_outputs([output_record(r) for r in results], args.output, predictor.info.class_names)
        print(f"written: {args.output}")
    return 0


def output_record(r: Prediction) -> dict:
    """One result as written to --output (the keys of earlier releases, then the new ones)."""
    return {"wav": r.source, "pred": r.label, "probs": r.probabilities, "logits": r.logits,
            "text": r.text, "text_source": r.text_source}  # fmt: skip


def write_outputs(results: list[dict], path: str, names: list[str]) -> None:
    if not path.endswith(".csv"):
        write_json_atomic(path, results)
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["wav", "pred", *(f"p_{c}" for c in names), "text_source", "text"])
    for r in results:
        probs = [f"{r['probs'][c]:.6f}" for c in names]
        writer.writerow([r["wav"], r["pred"], *probs, r["text_source"], r["text"] or ""])
    write_text_atomic(path, buffer.getvalue())


# -- export --------------------------------------------------------------------------------
def export(args: argparse.Namespace) -> int:
    from inference.onnx import export_onnx

    args.device, args.precision = "cpu", "fp32"  # the exported graph is fp32
    predictor = load_predictor(args, args.checkpoint)
    if not hasattr(predictor.backend, "model"):
        raise CheckpointError(f"{args.checkpoint}: export needs a torch checkpoint, not ONNX")
    path = export_onnx(predictor.backend.model, predictor.info, args.output)
    print(f"exported {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


# -- CLI -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("evaluate", help="metrics and predictions on one session of a manifest")
    e.add_argument(
        "--session",
        required=True,
        help="the held-out group: an IEMOCAP session 1-5, or a partition (test, dev)",
    )
    add_flag(e, "data.corpus", default="iemocap")
    e.add_argument("--config", "--config_path", dest="config",
                   help="experiment YAML (needed for the authors' .pt)")  # fmt: skip
    for key in ("data.csv_path", "data.audio_dir", "data.text_dir"):
        add_flag(e, key, required=True)
    e.add_argument("--checkpoint_path", required=True)
    e.add_argument("--predictions", help="write per-utterance predictions (CSV)")
    e.add_argument("--json", help="write the metrics here (default: beside --predictions)")
    e.add_argument("--transcripts", choices=("manifest", "asr"), default="manifest",
                   help="asr: transcribe each utterance and embed that instead")  # fmt: skip
    q = sub.add_parser("predict", help="class probabilities for new wav files")
    q.add_argument("--checkpoint", required=True, help="checkpoint dir, authors' .pt or .onnx")
    q.add_argument("--config", help="experiment YAML (needed for the authors' .pt)")
    q.add_argument("--wav", nargs="+")
    q.add_argument("--text", nargs="+", help="transcript(s): one for all wavs or one per wav")
    q.add_argument("--csv", help="CSV with columns wav,text (instead of --wav/--text)")
    q.add_argument("--output", help="write results (.json or .csv), atomically")
    x = sub.add_parser("export", help="export a checkpoint (ONNX)")
    x.add_argument("--checkpoint", required=True)
    x.add_argument("--config", help="experiment YAML (needed for the authors' .pt)")
    x.add_argument("--format", choices=("onnx",), default="onnx")
    x.add_argument("--output", required=True)
    for sp in (e, q):
        sp.add_argument("--text_model", help="HF id or local dir of the text encoder "
                        "(default: the one the checkpoint records)")  # fmt: skip
        sp.add_argument("--asr_model", help="ASR model for missing transcripts (hub id or "
                        "dir; default openai/whisper-small.en)")  # fmt: skip
        sp.add_argument("--batch_size", type=int, default=8, help="utterances per batch")
        add_flag(sp, "data.on_bad_input", default="error")
        sp.add_argument("--device", default="auto")
        sp.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto: bf16 where the hardware runs it natively")  # fmt: skip
    return p


COMMANDS = {"evaluate": evaluate, "predict": predict_files, "export": export}


def main(argv: list[str] | None = None) -> int:
    retain_freed_memory()  # no page faults for activations freed and allocated each call
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (MMERError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    np.set_printoptions(suppress=True)
    sys.exit(main())
