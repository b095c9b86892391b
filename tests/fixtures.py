"""Builders for test inputs in the real on-disk formats (wavs, .npy embeddings, CSV, release tree)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

COLUMNS = ["FileName", "Sentences", "Label", "text", "AugmentedText"]


def tone(seconds: float, rate: int = 16000, freq: float = 220.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return wave if channels == 1 else np.stack([wave] * channels, axis=1)


def write_wav(
    path: Path, seconds: float = 1.0, rate: int = 16000, channels: int = 1, freq: float = 220.0
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(seconds, rate, freq, channels), rate, subtype="PCM_16")
    return path


def write_npy(
    path: Path, tokens: int = 5, dim: int = 8, batch_axis: bool = True, seed: int = 0
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).standard_normal((tokens, dim)).astype(np.float32)
    np.save(path, arr[None] if batch_axis else arr)
    return path


def rows(n_per_session: int = 2, sessions=(1, 2)) -> list[dict]:
    labels = ["hap", "ang", "neu", "sad", "exc"]
    out = []
    for s in sessions:
        for i in range(n_per_session):
            name = f"Ses0{s}F_impro01_F{i:03d}"
            sent = f"Hello number {i} in session {s}."
            out.append(
                {
                    "FileName": name,
                    "Sentences": sent,
                    "Label": labels[(i + s) % 5],
                    "text": sent.upper().strip("."),
                    "AugmentedText": sent,
                }
            )
    return out


def write_csv(path: Path, data: list[dict], index_column: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(data, columns=COLUMNS).to_csv(path, index=index_column)
    return path


def make_dataset_dir(
    root: Path, n_per_session: int = 2, sessions=(1, 2), dim: int = 8, seconds=(0.5, 1.5)
) -> dict:
    """CSV + wavs (one at 44.1 kHz stereo) + .npy in both shapes + augmented files with the authors' names."""
    data = rows(n_per_session, sessions)
    csv = write_csv(root / "iemocap.csv", data)
    lens = np.linspace(seconds[0], seconds[1], len(data))
    for k, row in enumerate(data):
        name = row["FileName"]
        rate, ch = (44100, 2) if k == 0 else (16000, 1)
        write_wav(root / "wav" / f"{name}.wav", float(lens[k]), rate, ch)
        write_npy(
            root / "emb" / f"{name}.npy", tokens=3 + k % 4, dim=dim, batch_axis=k % 2 == 0, seed=k
        )
        write_npy(root / "emb_aug" / f"{name}.npy", tokens=4, dim=dim, seed=100 + k)
        write_wav(root / "aug" / f"Ses02M_script01_1_M_{name}.wav", 0.7, 16000, 1, 330.0)
        write_wav(root / "aug" / f"en-gb-m3_{name}.wav", 0.9, 16000, 1, 440.0)
    return {
        "csv": csv,
        "wav": root / "wav",
        "emb": root / "emb",
        "emb_aug": root / "emb_aug",
        "aug": root / "aug",
        "rows": data,
    }


def make_release_tree(root: Path, crlf: bool = True) -> Path:
    """A miniature IEMOCAP_full_release with the real quirks; returns its root."""
    rel = root / "IEMOCAP_full_release"
    dialogs = {
        1: (
            "Ses01F_impro01",
            [("F000", "neu"), ("M000", "exc"), ("F001", "xxx"), ("M001", "ang"), ("F002", "sad")],
        ),
        2: (
            "Ses02M_script01_1",
            [("F000", "hap"), ("M000", "fru"), ("F001", "sad"), ("M001", "neu")],
        ),
    }
    for s, (dialog, utts) in dialogs.items():
        sess = rel / f"Session{s}"
        emo = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        trans = []
        for k, (spk, label) in enumerate(utts):
            utt = f"{dialog}_{spk}"
            emo += [
                f"[{k + 1.5:.4f} - {k + 2.2:.4f}]\t{utt}\t{label}\t[2.5000, 2.5000, 2.5000]",
                "C-E1:\tNeutral;\t()",
                "",
            ]
            rate, ch = (44100, 2) if k == 0 else (16000, 1)
            write_wav(sess / "sentences" / "wav" / dialog / f"{utt}.wav", 0.5, rate, ch)
            if utt == "Ses01F_impro01_F002":
                continue  # an utterance without a transcript line
            words = "Excuse me [LAUGHTER] it's fine." if k == 0 else f"Line number {k}."
            block = "" if utt.endswith("M001") else f" [{k + 1.5:08.4f}-{k + 2.2:08.4f}]"
            trans.append(f"{utt}{block}: {words}")
        trans.append("M: [BREATHING]")
        eol = "\r\n" if crlf and s == 2 else "\n"
        for sub, lines in (("EmoEvaluation", emo), ("transcriptions", trans)):
            path = sess / "dialog" / sub / f"{dialog}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(eol.join(lines + [""]).encode())
    return rel


MSP_CLASSES = ["A", "H", "N", "S"]


def make_msp_release(root: Path, per_split: int = 8) -> Path:
    """A miniature MSP-Podcast release (Audios/, Labels/labels_consensus.csv, Transcripts/)
    with utterances to drop: other classes, another partition, a missing transcript."""
    (root / "Audios").mkdir(parents=True, exist_ok=True)
    (root / "Transcripts").mkdir(exist_ok=True)
    labels, k = [], 0
    for split in ("Train", "Development", "Test1"):
        for i in range(per_split):
            labels.append((f"MSP-PODCAST_{k // 4:04d}_{k % 4:04d}.wav", MSP_CLASSES[i % 4], split))
            k += 1
    labels += [("MSP-PODCAST_0900_0001.wav", "U", "Train"), ("MSP-PODCAST_0900_0002.wav", "X", "Train"),
               ("MSP-PODCAST_0900_0003.wav", "N", "Test2"), ("MSP-PODCAST_0900_0004.wav", "S", "Train")]  # fmt: skip
    rows = []
    for j, (name, emo, split) in enumerate(labels):
        stereo = j == 1
        write_wav(root / "Audios" / name, 0.6 + 0.05 * (j % 7), 44100 if stereo else 16000,
                  2 if stereo else 1, freq=150.0 + 40 * MSP_CLASSES.index(emo) if emo in MSP_CLASSES else 500.0)  # fmt: skip
        if name != "MSP-PODCAST_0900_0004.wav":  # this one has no transcript
            (root / "Transcripts" / name.replace(".wav", ".txt")).write_text(
                f"well this is podcast number {j}\n"
            )
        rows.append({"FileName": name, "EmoClass": emo, "EmoAct": 3.0, "EmoVal": 4.0,
                     "EmoDom": 3.5, "SpkrID": str(100 + j % 5), "Gender": "Female",
                     "Split_Set": split})  # fmt: skip
    (root / "Labels").mkdir(exist_ok=True)
    pd.DataFrame(rows).to_csv(root / "Labels" / "labels_consensus.csv", index=False)
    return root
