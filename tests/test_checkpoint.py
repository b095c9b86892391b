"""Checkpoints: native round trip, the authors' key layout, parity with their math, safety."""

import math
import os

import pytest
import torch

from models.checkpoint import (
    CheckpointError,
    export_authors_checkpoint,
    load_model,
    read_authors_checkpoint,
    save_model,
    to_authors_state_dict,
)
from models.mmer import MMERModel

from .conftest import random_view


@pytest.fixture
def model(tiny_config):
    torch.manual_seed(0)
    return MMERModel(tiny_config).eval()


def test_native_round_trip(model, tmp_path):
    save_model(model, tmp_path / "ckpt")
    loaded = load_model(tmp_path / "ckpt")
    view = random_view()
    torch.testing.assert_close(loaded(view).logits, model(view).logits, atol=0, rtol=0)
    assert loaded.config == model.config.__class__.from_dict(
        {**model.config.to_dict(), "audio_encoder_pretrained": False}
    )


@pytest.mark.parametrize("prefix", ["", "module."])
@pytest.mark.parametrize("old_weight_norm", [False, True])
def test_authors_layout_loads_and_matches(model, tiny_config, tmp_path, prefix, old_weight_norm):
    state = to_authors_state_dict(model)
    assert "model_mmi.txt2img_attention.layer.0.attention.self.query.weight" in state
    assert "orgin_linear_change.2.bias" in state and "model_mmi.weights" in state
    if not old_weight_norm:  # files saved by transformers >= 4.31 use parametrizations
        state = {
            k.replace("conv.weight_g", "conv.parametrizations.weight.original0").replace(
                "conv.weight_v", "conv.parametrizations.weight.original1"
            ): v
            for k, v in state.items()
        }
    path = tmp_path / "authors.pt"
    torch.save({"state_dict": {prefix + k: v for k, v in state.items()}}, path)
    loaded = load_model(path, tiny_config)
    view = random_view()
    torch.testing.assert_close(loaded(view).logits, model(view).logits, atol=0, rtol=0)


def test_export_then_import_is_identity(model, tiny_config, tmp_path):
    export_authors_checkpoint(model, tmp_path / "out.pt")
    state = read_authors_checkpoint(tmp_path / "out.pt")
    assert all(not k.startswith("module.") for k in state)
    reloaded = load_model(tmp_path / "out.pt", tiny_config)
    for k, v in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[k], v), k


def test_corrupted_authors_checkpoint_lists_the_problems(model, tiny_config, tmp_path):
    state = to_authors_state_dict(model)
    del state["model_mmi.gate.weight"]
    state["model_mmi.extra_head.weight"] = torch.zeros(3)
    state["model_mmi.ctc_linear.weight"] = torch.zeros(31, 64)
    torch.save({"state_dict": state}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError) as err:
        load_model(tmp_path / "bad.pt", tiny_config)
    msg = str(err.value)
    assert "bad.pt" in msg and "1 missing" in msg and "gate.weight" in msg
    assert "1 unexpected" in msg and "model_mmi.extra_head.weight" in msg
    assert "ctc_head.weight: checkpoint (31, 64) vs model (32, 64)" in msg


def test_malicious_pickle_is_refused_and_never_runs(tiny_config, tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"state_dict": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused to load.*weights_only"):
        load_model(tmp_path / "evil.pt", tiny_config)
    assert not marker.exists()


def test_missing_checkpoint_is_a_clear_error(tiny_config, tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nope.pt", tiny_config)


# -- parity with the reference implementation's math, written from its description -------
def _bert_layer_norm(x, w, b, eps=1e-12):
    u = x.mean(-1, keepdim=True)
    s = (x - u).pow(2).mean(-1, keepdim=True)
    return w * ((x - u) / torch.sqrt(s + eps)) + b


def _reference_block(sd, prefix, q_in, kv_in, key_mask, heads):
    def lin(name, x):
        return x @ sd[f"{prefix}.{name}.weight"].T + sd[f"{prefix}.{name}.bias"]

    def split(x):
        b, t, h = x.shape
        return x.view(b, t, heads, h // heads).permute(0, 2, 1, 3)

    q, k, v = (
        split(lin("attention.self.query", q_in)),
        split(lin("attention.self.key", kv_in)),
        split(lin("attention.self.value", kv_in)),
    )
    ext = (1.0 - key_mask[:, None, None, :].float()) * -10000.0
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + ext
    ctx = (scores.softmax(-1) @ v).permute(0, 2, 1, 3).flatten(2)
    a = _bert_layer_norm(
        lin("attention.output.dense", ctx) + q_in,
        sd[f"{prefix}.attention.output.LayerNorm.weight"],
        sd[f"{prefix}.attention.output.LayerNorm.bias"],
    )
    h = lin("intermediate.dense", a)
    h = h * 0.5 * (1.0 + torch.erf(h / math.sqrt(2.0)))
    return _bert_layer_norm(
        lin("output.dense", h) + a,
        sd[f"{prefix}.output.LayerNorm.weight"],
        sd[f"{prefix}.output.LayerNorm.bias"],
    )


def _reference_head(sd, frames, frame_lengths, text, text_mask, heads):
    """MMI_Model.forward after the encoder (fuse_type 'max'), in the authors' names."""
    m = "model_mmi"

    def lin(name, x):
        return x @ sd[f"{m}.{name}.weight"].T + sd[f"{m}.{name}.bias"]

    audio_mask = torch.arange(frames.shape[1])[None] < frame_lengths[:, None]
    s = _reference_block(sd, f"{m}.self_attention_v2.layer.0", text, text, text_mask, heads)
    x1 = _reference_block(
        sd, f"{m}.txt2img_attention.layer.0", s, lin("vismap2text", frames), audio_mask, heads
    )
    x2 = _reference_block(
        sd, f"{m}.img2txt_attention.layer.0", lin("vismap2text_v2", frames), s, text_mask, heads
    )
    x3 = _reference_block(sd, f"{m}.txt2txt_attention.layer.0", s, x2, audio_mask, heads)
    gate = torch.sigmoid(lin("gate", torch.cat([x3, x1], -1)))
    fused = torch.cat([x3, gate * x1], -1)
    a = frames.clone()
    a[~audio_mask] = -9999.9999
    mm = fused.clone()
    mm[~text_mask] = -9999.9999
    f = torch.cat([a.max(1).values, lin("downsample_final", mm.max(1).values)], -1)
    return lin("classifier.linear3", f), f


def test_fusion_reproduces_the_reference_math(model):
    sd = to_authors_state_dict(model)
    frames = torch.randn(3, 30, 64)
    frame_lengths = torch.tensor([30, 17, 5])
    view = random_view(tokens=(6, 3, 2))
    ours = model.fuse(frames, frame_lengths, view.text, view.text_mask)
    logits, features = _reference_head(
        sd, frames, frame_lengths, view.text, view.text_mask, heads=4
    )
    torch.testing.assert_close(ours.features, features, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.logits, logits, atol=1e-5, rtol=1e-5)
