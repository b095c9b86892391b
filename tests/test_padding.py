"""Padding-exact encoding: an utterance's logits do not depend on its batch or its padding,
and the authors' checkpoints reproduce the authors' model (scored one unpadded utterance at
a time) through infer.sh at any batch size."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
import yaml
from transformers import Wav2Vec2Config, Wav2Vec2Model

from models.audio_encoder import valid_frames_only
from models.batch import View
from models.checkpoint import export_authors_checkpoint
from models.config import MMERConfig
from models.mmer import MMERModel

from .conftest import TINY, random_view
from .fixtures import write_csv
from .test_checkpoint import _reference_head

ROOT = Path(__file__).resolve().parent.parent
LAYER_NORM = {"feat_extract_norm": "layer", "do_stable_layer_norm": True}  # large-lv60 style


def unpadded(view: View, i: int) -> View:
    n, t = int(view.audio_lengths[i]), int(view.text_mask[i].sum())
    return View(view.audio[i : i + 1, :n], view.audio_lengths[i : i + 1],
                view.text[i : i + 1, :t], view.text_mask[i : i + 1, :t])  # fmt: skip


def padded(view: View, extra: int) -> View:
    audio = torch.cat([view.audio, torch.zeros(view.audio.shape[0], extra)], dim=1)
    return View(audio, view.audio_lengths, view.text, view.text_mask)


@pytest.mark.parametrize("overrides", [{}, LAYER_NORM], ids=["group-norm", "layer-norm"])
def test_logits_do_not_depend_on_batch_or_padding(overrides):
    torch.manual_seed(0)
    model = MMERModel(MMERConfig(**{**TINY, "audio_encoder_overrides": overrides})).eval()
    view = random_view(lengths=(16000, 11000, 6400))
    with torch.no_grad():
        alone = torch.cat([model(unpadded(view, i)).logits for i in range(3)])
        for extra in (0, 4000, 13_579):  # the batch's longest item, a quantum, anything
            torch.testing.assert_close(model(padded(view, extra)).logits, alone, atol=1e-5, rtol=0)


def test_published_padding_is_still_selectable_and_differs():
    torch.manual_seed(0)
    model = MMERModel(MMERConfig(**TINY, audio_padding="published")).eval()
    view = random_view(lengths=(16000, 11000, 6400))
    with torch.no_grad():
        alone = model(unpadded(view, 2)).logits
        batched = model(view).logits[2:]
    assert (batched - alone).abs().max() > 1e-3  # the padding leaks, as in the authors' code


def test_first_conv_groupnorm_by_hand_at_two_padded_lengths():
    """wav2vec2's first conv layer: conv (no bias) -> GroupNorm(one group per channel) -> GELU,
    the statistics over the utterance's own frames; computed here in float64 numpy."""
    torch.manual_seed(0)
    encoder = MMERModel(MMERConfig(**TINY)).eval().audio_encoder
    layer = encoder.feature_extractor.conv_layers[0]
    wave = torch.randn(5003)
    w = layer.conv.weight.detach().double().numpy()  # (channels, 1, kernel)
    k, s = layer.conv.kernel_size[0], layer.conv.stride[0]
    x = wave.double().numpy()
    frames = (len(x) - k) // s + 1
    conv = np.stack([x[t * s : t * s + k] for t in range(frames)]) @ w[:, 0, :].T  # (T, C)
    norm = (conv - conv.mean(0)) / np.sqrt(conv.var(0) + layer.layer_norm.eps)
    norm = norm * layer.layer_norm.weight.detach().double().numpy()
    norm = norm + layer.layer_norm.bias.detach().double().numpy()
    by_hand = torch.from_numpy(norm.T).float()  # (C, T)
    by_hand = F.gelu(by_hand)
    for width in (5003 + 2997, 5003 + 24_000):
        audio = torch.zeros(2, width)
        audio[0, :5003] = wave
        audio[1] = torch.randn(width)  # a longer neighbour fills the batch
        lengths = torch.tensor([5003, width])
        with torch.no_grad(), valid_frames_only(encoder, lengths):
            out = layer(audio[:, None])
        torch.testing.assert_close(out[0, :, :frames], by_hand, atol=1e-5, rtol=1e-5)
        assert out[0, :, frames:].abs().max() < 1  # padded frames are normalised zeros -> GELU(b)


# -- the authors' model on their checkpoint, against infer.sh --------------------------------
@pytest.fixture(scope="module")
def noise_corpus(tmp_path_factory):
    """Session 1 of a corpus of noise-like speech stand-ins, lengths 0.4-14 s (one is cut)."""
    root = tmp_path_factory.mktemp("noise")
    rng = np.random.default_rng(7)
    rows = []
    seconds = [0.4, 1.7, 2.3, 0.9, 3.1, 14.0, 1.2, 2.8, 0.6, 1.9]
    for i, sec in enumerate(seconds):
        name = f"Ses01F_impro02_F{i:03d}"
        wave = rng.standard_normal(int(sec * 16000)) * np.linspace(0.05, 0.3, int(sec * 16000))
        (root / "wav").mkdir(exist_ok=True)
        sf.write(root / "wav" / f"{name}.wav", wave.astype(np.float32), 16000, subtype="FLOAT")
        (root / "emb").mkdir(exist_ok=True)
        np.save(
            root / "emb" / f"{name}.npy", rng.standard_normal((1, 3 + i % 5, 32)).astype(np.float32)
        )
        rows.append({"FileName": name, "Sentences": "words " * 6, "Label": "neu",
                     "text": "WORDS", "AugmentedText": "words"})  # fmt: skip
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump({"model": dict(TINY)}))
    return {"csv": write_csv(root / "m.csv", rows), "wav": root / "wav", "emb": root / "emb",
            "config": config, "names": [r["FileName"] for r in rows]}  # fmt: skip


def authors_reference(state: dict, wav: Path, emb: Path) -> torch.Tensor:
    """The authors' evaluation of one utterance, from the published definitions: the file
    read, cut at 210 000 samples, normalised like Wav2Vec2FeatureExtractor, then HF
    Wav2Vec2Model on that unpadded utterance alone (no mask), then MMI_Model's fusion."""
    encoder = Wav2Vec2Model(Wav2Vec2Config.from_pretrained(ROOT / "configs/encoders/wav2vec2-tiny"))
    prefix = "model_mmi.wav2vec2."
    encoder.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    encoder.eval()
    x, rate = sf.read(wav, dtype="float32")
    assert rate == 16000
    x = x[:210_000]
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    text = torch.from_numpy(np.load(emb))
    with torch.no_grad():
        frames = encoder(torch.from_numpy(x)[None]).last_hidden_state
        logits, _ = _reference_head(
            state, frames, torch.tensor([frames.shape[1]]), text,
            torch.ones(text.shape[:2], dtype=torch.bool), heads=TINY["num_attention_heads"],
        )  # fmt: skip
    return logits[0]


@pytest.mark.parametrize("batch_size", [1, 8])
def test_infer_sh_reproduces_the_authors_model_on_their_checkpoint(
    noise_corpus, tmp_path, batch_size
):
    torch.manual_seed(3)
    model = MMERModel(MMERConfig(**TINY))
    export_authors_checkpoint(model, tmp_path / "authors.pt")
    state = torch.load(tmp_path / "authors.pt", weights_only=True)["state_dict"]
    out = tmp_path / "preds.csv"
    c = noise_corpus
    cmd = ["bash", str(ROOT / "infer.sh"), "1", str(c["config"]), str(c["csv"]), str(c["wav"]),
           str(c["emb"]), str(tmp_path / "authors.pt"), "--predictions", str(out),
           "--batch_size", str(batch_size), "--precision", "fp32"]  # fmt: skip
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    rows = {r["FileName"]: r for r in csv.DictReader(out.open())}
    assert sorted(rows) == sorted(c["names"])
    for name in c["names"]:
        ours = torch.tensor([float(rows[name][f"logit_{k}"]) for k in ("hap", "ang", "neu", "sad")])
        ref = authors_reference(state, c["wav"] / f"{name}.wav", c["emb"] / f"{name}.npy")
        torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0, msg=name)


def test_the_graph_friendly_groupnorm_equals_the_per_utterance_one():
    """torch.export / torch.compile take masked sums instead of the per-utterance loop."""
    torch.manual_seed(0)
    encoder = MMERModel(MMERConfig(**TINY)).eval().audio_encoder
    norm = encoder.feature_extractor.conv_layers[0].layer_norm
    x = torch.randn(3, norm.num_channels, 57)
    valid = torch.tensor([57, 30, 2])
    norm.valid_frames = valid
    try:
        looped = norm(x)
    finally:
        norm.valid_frames = None
    torch.testing.assert_close(norm._masked(x, valid), looped, atol=1e-5, rtol=1e-5)
