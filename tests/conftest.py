"""Shared fixtures: a tiny MMER config and a random padded batch (CPU, seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

import train
from models.batch import Batch, View
from models.config import MMERConfig
from models.text_encoder import TextEncoderInfo
from models.text_encoder import write_info as write_text_encoder_info

from .fixtures import make_dataset_dir

TINY = dict(
    audio_encoder="wav2vec2-tiny",
    audio_encoder_pretrained=False,
    text_dim=32,
    hidden_size=32,
    num_attention_heads=4,
    intermediate_size=64,
)


@pytest.fixture
def tiny_config() -> MMERConfig:
    return MMERConfig(**TINY)


def random_view(lengths=(16000, 11000, 6400), tokens=(7, 4, 2), text_dim=32, seed=0) -> View:
    g = torch.Generator().manual_seed(seed)
    audio = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        audio[i, :n] = torch.randn(n, generator=g)
    text = torch.zeros(len(tokens), max(tokens), text_dim)
    mask = torch.zeros(len(tokens), max(tokens), dtype=torch.bool)
    for i, t in enumerate(tokens):
        text[i, :t] = torch.randn(t, text_dim, generator=g)
        mask[i, :t] = True
    return View(audio, torch.tensor(lengths), text, mask)


def random_batch(text_dim=32, seed=0, augmented=True) -> Batch:
    view = random_view(text_dim=text_dim, seed=seed)
    aug = random_view((9000, 16000, 12000), (5, 6, 3), text_dim, seed + 1) if augmented else None
    ctc = torch.tensor([[11, 4, 5, 6], [7, 8, -100, -100], [9, -100, -100, -100]])
    return Batch(view, torch.tensor([0, 2, 0]), ctc, ["a", "b", "c"], aug)


@pytest.fixture
def batch() -> Batch:
    return random_batch()


# -- a fixture corpus in the real file formats and one trained run, shared by the test files
@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    paths = make_dataset_dir(root, n_per_session=8, sessions=(1, 2, 3), dim=32)
    # what data_prep/embed_text.py records beside the embeddings it writes
    write_text_encoder_info(paths["emb"], TextEncoderInfo("fixture-encoder", 32))
    config = root / "tiny.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": dict(TINY),
                "train": {
                    "epochs": 2,
                    "batch_size": 4,
                    "accum_iter": 2,
                    "lr": 1e-3,
                    "eval_batch_size": 8,
                },
            }
        )
    )
    return {**paths, "config": config}


def cli(corpus, save_path, *extra) -> list[str]:
    return [
        "--config", str(corpus["config"]), "--save_path", str(save_path),
        "--csv_path", str(corpus["csv"]), "--data_path_audio", str(corpus["wav"]),
        "--data_path_roberta", str(corpus["emb"]),
        "--data_path_audio_augmented", str(corpus["aug"]),
        "--data_path_roberta_augmented", str(corpus["emb_aug"]),
        "--sessions", "1", "2", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="session")
def reference_run(corpus, tmp_path_factory):
    save = tmp_path_factory.mktemp("run") / "ref"
    assert train.main(cli(corpus, save)) == 0
    return save


def fold_metrics(run: Path) -> dict:
    """What must not change when a run is interrupted and resumed: confusion and chosen epoch."""
    results = json.loads((run / "results.json").read_text())
    return {k: (f["test"]["confusion"], f["best_epoch"]) for k, f in results["folds"].items()}
