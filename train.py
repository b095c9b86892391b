"""Train and evaluate MMER: leave-one-session-out on IEMOCAP, or on another corpus by its own
protocol (`--corpus msp_podcast`: the release's Train / Development / Test1 partition).

    python train.py --config configs/mmer.yaml --save_path exp/mmer \
        --csv_path data/iemocap.csv --audio_dir data/iemocap --text_dir data/roberta \
        --augmented_audio_dir data/iemocap_augmented \
        --augmented_text_dir data/roberta_augmented

A flag sets the config key of its name (`--text_dir` sets `data.text_dir`; the published
spellings, `--data_path_roberta` and the like, are aliases); `--set section.key=value` sets any.

Usually called through `sh run.sh`. Re-running the same command resumes. Several GPUs:
`torchrun --nproc_per_node 4 train.py ...`. Merge folds trained as separate jobs:
`python train.py --merge_results exp/job1 exp/job2 ... --save_path exp/all`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from training.experiment import load_experiment
from training.flags import add_setting_flags, overrides_from_args
from training.trainer import Interrupted, TrainingError, merge_runs, run_loso
from utils.distributed import init_distributed, shutdown
from utils.errors import MMERError
from utils.memory import retain_freed_memory


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", default="configs/mmer.yaml", help="experiment YAML")
    p.add_argument("--save_path", default="exp/mmer", help="run directory (outputs, resume state)")
    add_setting_flags(p)  # one per setting of training/flags.py, the ablations and --set
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue a run found in --save_path (default); --no-resume starts over")  # fmt: skip
    p.add_argument("--merge_results", nargs="+", metavar="RUN_DIR",
                   help="merge finished folds of several run dirs into --save_path, then exit")  # fmt: skip
    return p


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
    retain_freed_memory()  # no page faults for activations freed and allocated each step
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
