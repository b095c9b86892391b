"""What the data-preparation scripts share: how a user error ends a script, and the command
line of every corpus preparation script (prepare_<corpus>.py)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from utils.errors import MMERError


def run(main: Callable[[], int]) -> int:
    """A script's `main()`, for its `__main__`: a user error (MMERError, or a file that cannot
    be read or written) ends it with one line on stderr and status 2, not a traceback."""
    try:
        return main()
    except (MMERError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def preparation_args(
    doc: str, argv: list[str] | None, corpus: str, out_csv: str, out_wav_dir: str, corpus_help: str
) -> argparse.Namespace | None:
    """--corpus, --out_csv, --out_wav_dir, --overwrite; None when the manifest exists already
    (preparation is idempotent: say so and do nothing unless --overwrite)."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", default=corpus, help=corpus_help)
    parser.add_argument("--out_csv", default=out_csv)
    parser.add_argument("--out_wav_dir", default=out_wav_dir)
    parser.add_argument("--overwrite", action="store_true", help="rewrite an existing CSV")
    args = parser.parse_args(argv)
    args.corpus, args.out_csv, args.out_wav_dir = (
        Path(args.corpus),
        Path(args.out_csv),
        Path(args.out_wav_dir),
    )
    args.parser = parser
    if args.out_csv.is_file() and not args.overwrite:
        print(f"{args.out_csv} exists; nothing to do (--overwrite to rebuild it)")
        return None
    return args
