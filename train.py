"""Train and evaluate MMER: leave-one-session-out on IEMOCAP, or on another corpus by its own
protocol (`--corpus msp_podcast`: the release's Train / Development / Test1 partition).

    python train.py --config configs/mmer.yaml --save_path exp/mmer \
        --csv_path data/iemocap.csv --data_path_audio data/iemocap \
        --data_path_roberta data/roberta \
        --data_path_audio_augmented data/iemocap_augmented \
        --data_path_roberta_augmented data/roberta_augmented

Usually called through `sh run.sh`. Re-running the same command resumes. Several GPUs:
`torchrun --nproc_per_node 4 train.py ...`. Merge folds trained as separate jobs:
`python train.py --merge_results exp/job1 exp/job2 ... --save_path exp/all`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from models.config import ConfigError
from training.corpus import CORPORA
from training.experiment import SELECTIONS, load_experiment
from training.trainer import Interrupted, TrainingError, merge_runs, run_loso
from utils.distributed import init_distributed, shutdown
from utils.errors import MMERError
from utils.precision import PRECISIONS

# flag -> (section, key); the reference's spellings are aliases of the same flag
FLAG_TARGETS = {
    "lambda_aux": ("model", "lambda_aux"),
    "modalities": ("model", "modalities"),
    "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"),
    "accum_iter": ("train", "accum_iter"),
    "lr": ("train", "lr"),
    "seed": ("train", "seed"),
    "sessions": ("train", "sessions"),
    "selection": ("train", "selection"),
    "precision": ("train", "precision"),
    "device": ("train", "device"),
    "num_workers": ("train", "num_workers"),
    "save_every_steps": ("train", "save_every_steps"),
    "corpus": ("data", "corpus"),
    "csv_path": ("data", "csv_path"),
    "data_path_audio": ("data", "audio_dir"),
    "data_path_roberta": ("data", "text_dir"),
    "data_path_audio_augmented": ("data", "augmented_audio_dir"),
    "data_path_roberta_augmented": ("data", "augmented_text_dir"),
    "on_bad_input": ("data", "on_bad_input"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", default="configs/mmer.yaml", help="experiment YAML")
    p.add_argument("--save_path", default="exp/mmer", help="run directory (outputs, resume state)")
    p.add_argument(
        "--lambda",
        "--lambda_value",
        dest="lambda_aux",
        type=float,
        help="weight of the auxiliary losses",
    )
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch_size", type=int)
    p.add_argument(
        "--accum_iter", "--accum_grad", dest="accum_iter", type=int, help="gradient accumulation"
    )
    p.add_argument("--lr", "--learning_rate", dest="lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--sessions", type=int, nargs="+", help="test sessions to run (default 1 2 3 4 5)"
    )
    p.add_argument("--selection", choices=SELECTIONS, help="model selection protocol")
    p.add_argument("--precision", choices=PRECISIONS)
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--num_workers", type=int)
    p.add_argument("--save_every_steps", type=int, help="also save resumable state every N steps")
    p.add_argument("--on_bad_input", choices=("error", "skip"))
    p.add_argument("--corpus", choices=sorted(CORPORA), help="corpus and its protocol")
    p.add_argument("--csv_path")
    p.add_argument("--data_path_audio")
    p.add_argument("--data_path_roberta")
    p.add_argument("--data_path_audio_augmented")
    p.add_argument("--data_path_roberta_augmented")
    p.add_argument(
        "--modalities", choices=("both", "audio", "text"), help="ablation: one modality only"
    )
    p.add_argument("--no_ctc", action="store_true", help="ablation: drop the CTC loss")
    p.add_argument(
        "--no_scl", action="store_true", help="ablation: drop the supervised contrastive loss"
    )
    p.add_argument(
        "--no_acl", action="store_true", help="ablation: drop the augmentation contrastive loss"
    )
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue a run found in --save_path (default); --no-resume starts over")  # fmt: skip
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config value, e.g. --set model.hidden_size=256 (YAML value)")  # fmt: skip
    p.add_argument("--merge_results", nargs="+", metavar="RUN_DIR",
                   help="merge finished folds of several run dirs into --save_path, then exit")  # fmt: skip
    return p


def overrides_from_args(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {"model": {}, "data": {}, "train": {}}
    for flag, (section, key) in FLAG_TARGETS.items():
        value = getattr(args, flag)
        if value is not None:
            out[section][key] = value
    for flag, key in (("no_ctc", "use_ctc"), ("no_scl", "use_scl"), ("no_acl", "use_acl")):
        if getattr(args, flag):
            out["model"][key] = False
    for item in args.set:
        target, sep, value = item.partition("=")
        section, dot, key = target.partition(".")
        if not sep or not dot or section not in out:
            raise ConfigError(
                f"--set {item!r}: expected SECTION.KEY=VALUE with SECTION in model/data/train"
            )
        out[section][key] = yaml.safe_load(value)
    return out


def start_over(save_path: Path) -> None:
    """--no-resume: remove what a previous run wrote (and nothing else): the run files and
    every fold directory (one with a result.json or resumable state)."""
    for name in ("config.yaml", "results.json", "results.md", "confusion_pooled.png", "tb"):
        target = save_path / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    for fold in save_path.glob("*/"):
        if (
            (fold / "result.json").exists()
            or (fold / "state.pt").exists()
            or (fold / "best").is_dir()
        ):
            shutil.rmtree(fold)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.merge_results:
            merge_runs([Path(p) for p in args.merge_results], Path(args.save_path))
            return 0
        exp = load_experiment(args.config, overrides_from_args(args))
        ctx, device = init_distributed(exp.train.device)
    except MMERError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2 if not isinstance(err, TrainingError) else 1
    save_path = Path(args.save_path)
    if not args.resume and ctx.is_main:
        start_over(save_path)
    code = 0
    try:
        run_loso(exp, save_path, ctx, device)
    except Interrupted as err:
        print(f"\ninterrupted: {err}. Re-run the same command to resume.", file=sys.stderr)
        code = 130
    except MMERError as err:
        print(f"error: {err}", file=sys.stderr)
        code = 1 if isinstance(err, TrainingError) else 2
    shutdown(ctx, exit_code=code)
    return code


if __name__ == "__main__":
    sys.exit(main())
