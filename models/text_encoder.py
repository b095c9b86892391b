"""The text encoder that turns transcripts into MMER's token embeddings (RoBERTa-base in the
paper), and the record of which one made a directory of embeddings or a checkpoint.

    encoder = TextEncoder("roberta-base")          # hub id, or a local directory (offline)
    [emb] = encoder(["I can't believe it"])        # float32 (1, T, hidden), <s> ... </s>

`data_prep/embed_text.py` writes `<out_dir>/text_encoder.json` beside the `.npy` files; the
trainer copies it into every checkpoint, so prediction needs no `--text_model`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from utils.errors import MMERError
from utils.io import write_json_atomic

INFO_FILE = "text_encoder.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack")


class TextEncoderError(MMERError, ValueError):
    """The text encoder cannot be loaded, or is not the one the model was trained with."""


@dataclass(frozen=True)
class TextEncoderInfo:
    name: str  # hub id or local directory, as given to embed_text.py
    hidden_size: int  # width of the token embeddings (= MMERConfig.text_dim)
    sha256: str | None = None  # of the weight files, for a local directory

    def same_encoder_as(self, other: TextEncoderInfo) -> bool:
        if self.sha256 and other.sha256:
            return self.sha256 == other.sha256
        return self.name == other.name and self.hidden_size == other.hidden_size

    def describe(self) -> str:
        digest = f", weights sha256 {self.sha256[:12]}" if self.sha256 else ""
        return f"{self.name} ({self.hidden_size}-d{digest})"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TextEncoderInfo:
        return cls(str(d["name"]), int(d["hidden_size"]), d.get("sha256"))


def weights_sha256(directory: str | Path) -> str | None:
    """One sha256 over a local model directory's weight files (None for a hub id)."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    files = sorted(p for p in directory.iterdir() if p.suffix in WEIGHT_SUFFIXES)
    if not files:
        return None
    h = hashlib.sha256()
    for path in files:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):  # noqa: B023 - f is this file
                h.update(block)
    return h.hexdigest()


def read_info(directory: str | Path) -> TextEncoderInfo | None:
    path = Path(directory) / INFO_FILE
    if not path.is_file():
        return None
    try:
        return TextEncoderInfo.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as err:
        raise TextEncoderError(f"{path}: not a text-encoder record ({err})") from None


def write_info(directory: str | Path, info: TextEncoderInfo) -> None:
    write_json_atomic(Path(directory) / INFO_FILE, info.to_dict())


class TextEncoder:
    """A HF text encoder (tokenizer + model) giving last-layer token states, special tokens
    included, unpadded: exactly what the training embeddings are."""

    def __init__(self, name: str, device: str | torch.device = "cpu", max_length: int = 512):
        from transformers import AutoModel, AutoTokenizer

        local = Path(name).is_dir()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local)
            model = AutoModel.from_pretrained(name, local_files_only=local)
        except OSError as err:
            raise TextEncoderError(
                f"could not load the text encoder {name!r}: {err}\n"
                "Offline? Point --text_model at a local directory holding it."
            ) from None
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.max_length = max_length
        self.info = TextEncoderInfo(name, int(model.config.hidden_size), weights_sha256(name))

    @torch.inference_mode()
    def __call__(self, texts: list[str]) -> list[np.ndarray]:
        """Per text a float32 array (1, T_i, hidden), padding removed."""
        enc = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        enc = {k: v.to(self.device) for k, v in enc.items()}
        hidden = self.model(**enc).last_hidden_state.float().cpu().numpy()  # (batch, T, hidden)
        # tokenizers pad on the right or on the left; keep the real positions either way
        mask = enc["attention_mask"].bool().cpu().numpy()
        return [hidden[i][mask[i]][None].astype(np.float32) for i in range(len(texts))]
