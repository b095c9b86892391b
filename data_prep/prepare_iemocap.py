"""Turn IEMOCAP_full_release into the authors' manifest and 16 kHz mono wavs.

    python -m data_prep.prepare_iemocap --corpus data/IEMOCAP_full_release --out_csv data/iemocap.csv --out_wav_dir data/iemocap

`--corpus` may also be the release tarball (`data/IEMOCAP_full_release.tar.gz`): the label,
transcription and sentence-wav members are extracted next to it once. Keeps the 4 classes
(hap, exc, ang, neu, sad; `exc` is class happy, the Label column keeps the original code),
drops every other label and utterances without a transcript line (counted). Writes
`FileName, Sentences, Label, text, AugmentedText`: `Sentences` is the transcript without
bracketed tags ([LAUGHTER], [BREATHING], ...), `text` its upper-case CTC target, and
`AugmentedText` a copy of `Sentences` until `augment_text.py` fills it. Wavs are copied when
already 16 kHz mono, else converted. Idempotent: an existing CSV is left alone (--overwrite
rewrites it; AugmentedText of rows kept is carried over), and existing wavs are not redone.
"""

from __future__ import annotations

import re
import tarfile
from collections import Counter
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from data_prep.cli import preparation_args, run
from models.vocab import clean_ctc_text
from training.manifest import LABEL_TO_ID, REQUIRED_COLUMNS, DataError
from utils import audio as audio_io

KEEP = tuple(LABEL_TO_ID)  # hap, exc, ang, neu, sad
EXPECTED_PER_SESSION = {1: 1085, 2: 1023, 3: 1151, 4: 1031, 5: 1241}  # 5531 in all
_EMO_LINE = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(\S+)\s+(\S+)")
_TRANS_LINE = re.compile(r"^(Ses\d\d[FM]_\S+?)(?:\s*\[[^\]]*\])?\s*:\s?(.*)$")
_TAG = re.compile(r"\[[^\]]*\]")
_SPACES = re.compile(r"\s+")


def read_lines(path: Path) -> list[str]:
    """Lines of a label/transcript file; tolerant of CRLF and stray non-UTF-8 bytes."""
    return path.read_bytes().decode("utf-8", errors="replace").splitlines()


def parse_emo_evaluation(path: Path) -> dict[str, str]:
    """utterance -> label code from an EmoEvaluation file (lines starting with `[`)."""
    labels = {}
    for line in read_lines(path):
        match = _EMO_LINE.match(line.strip())
        if match:
            labels[match.group(3)] = match.group(4).lower()
    return labels


def parse_transcription(path: Path) -> dict[str, str]:
    """utterance -> words from `utt [start-end]: words` lines (the time block may be missing)."""
    out = {}
    for line in read_lines(path):
        match = _TRANS_LINE.match(line.strip())
        if match:
            out[match.group(1)] = match.group(2).strip()
    return out


def clean_transcript(words: str) -> str:
    """Remove bracketed tags such as [LAUGHTER] and collapse spaces."""
    return _SPACES.sub(" ", _TAG.sub(" ", words)).strip()


def extract_tarball(tarball: Path, dest: Path) -> Path:
    """Extract the members preparation needs (once) and return the IEMOCAP_full_release root."""
    wanted = re.compile(
        r"(^|/)Session\d/(dialog/(EmoEvaluation|transcriptions)/[^/]+\.txt|sentences/wav/.+\.wav)$"
    )
    with tarfile.open(tarball) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and wanted.search(m.name)]
        if not members:
            raise DataError(
                f"{tarball}: no Session*/dialog or Session*/sentences/wav members found"
            )
        todo = [m for m in members if not (dest / m.name).is_file()]
        for member in tqdm(todo, desc=f"extracting {tarball.name}", disable=not todo):
            tar.extract(member, dest, filter="data")
        first = Path(members[0].name).parts
    session_at = next(i for i, part in enumerate(first) if re.fullmatch(r"Session\d", part))
    return dest.joinpath(*first[:session_at])


def collect(root: Path) -> tuple[list[dict], Counter]:
    """Rows for every kept utterance under `root`, and counts of what was dropped and why."""
    sessions = sorted(p for p in root.glob("Session[0-9]") if p.is_dir())
    if not sessions:
        raise DataError(f"{root}: no Session1..Session5 directories; expected IEMOCAP_full_release")
    rows, dropped = [], Counter()
    for session in sessions:
        for emo_file in sorted((session / "dialog" / "EmoEvaluation").glob("*.txt")):
            dialog = emo_file.stem
            trans_file = session / "dialog" / "transcriptions" / f"{dialog}.txt"
            transcripts = parse_transcription(trans_file) if trans_file.is_file() else {}
            for utt, label in parse_emo_evaluation(emo_file).items():
                if label not in KEEP:
                    dropped[f"label {label}"] += 1
                    continue
                wav = session / "sentences" / "wav" / dialog / f"{utt}.wav"
                if utt not in transcripts:
                    dropped["no transcript line"] += 1
                    print(f"warning: {utt}: no line in {trans_file}; skipped")
                    continue
                if not wav.is_file():
                    dropped["no wav"] += 1
                    print(f"warning: {utt}: {wav} not found; skipped")
                    continue
                sentence = clean_transcript(transcripts[utt])
                rows.append(
                    {
                        "FileName": utt,
                        "Sentences": sentence,
                        "Label": label,
                        "text": clean_ctc_text(sentence),
                        "AugmentedText": sentence,
                        "_wav": wav,
                    }
                )
    return rows, dropped


def main(argv: list[str] | None = None) -> int:
    args = preparation_args(__doc__, argv, "data/IEMOCAP_full_release", "data/iemocap.csv",
                            "data/iemocap", "release directory or tarball")  # fmt: skip
    if args is None:
        return 0
    corpus, out_csv, out_wav, parser = args.corpus, args.out_csv, args.out_wav_dir, args.parser
    if corpus.is_file() and tarfile.is_tarfile(corpus):
        corpus = extract_tarball(corpus, corpus.parent)
    elif not corpus.is_dir():
        parser.error(f"--corpus {corpus}: not a directory or tarball")
    rows, dropped = collect(corpus)
    if not rows:
        raise DataError(f"{corpus}: no utterance with a 4-class label, transcript and wav")

    out_wav.mkdir(parents=True, exist_ok=True)
    written = 0
    for row in tqdm(rows, desc="wavs"):
        written += audio_io.write_16k_mono(row.pop("_wav"), out_wav / f"{row['FileName']}.wav")
    df = pd.DataFrame(rows, columns=list(REQUIRED_COLUMNS))
    if out_csv.is_file():  # --overwrite: keep paraphrases already made
        old = pd.read_csv(out_csv, dtype=str, keep_default_na=False)
        if {"FileName", "AugmentedText"} <= set(old.columns):
            keep = dict(zip(old["FileName"], old["AugmentedText"], strict=True))
            df["AugmentedText"] = [
                keep.get(n) or s for n, s in zip(df["FileName"], df["Sentences"], strict=True)
            ]
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_csv.with_suffix(".tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(out_csv)

    df["session"] = df["FileName"].str.extract(r"Ses0(\d)")[0].astype(int)
    df["class"] = df["Label"].replace({"exc": "hap"})
    table = pd.crosstab(df["session"], df["class"], margins=True, margins_name="all")
    print(f"wrote {out_csv} ({len(df)} utterances) and {written} new wav(s) in {out_wav}")
    print(table.to_string())
    if dropped:
        print("dropped: " + ", ".join(f"{k}: {v}" for k, v in sorted(dropped.items())))
    per_session = df["session"].value_counts().to_dict()
    if len(per_session) == 5 and per_session != EXPECTED_PER_SESSION:
        kind = "warning" if len(df) > 5000 else "note (fine for a subset or the demo corpus)"
        print(
            f"{kind}: the full release gives 5531 {EXPECTED_PER_SESSION}; got {len(df)} {dict(sorted(per_session.items()))}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
