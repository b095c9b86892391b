"""fairseq wav2vec 2.0 checkpoints converted to transformers match fairseq's own features.

The fixtures in tests/data/fairseq/ were written by fairseq-fixed 0.12.3.1
(tests/data/fairseq/make_fixtures.py); fairseq is not needed here.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from models.fairseq_wav2vec2 import (
    FairseqCheckpointError,
    UnsafeCheckpointError,
    is_fairseq_checkpoint,
    load_fairseq_wav2vec2,
    main,
    parse_conv_layers,
)

FIXTURES = Path(__file__).parent / "data" / "fairseq"
TOLERANCE = 1e-4  # max abs difference to fairseq's features
# checkpoint -> reference features (.npz written by fairseq from that checkpoint)
VARIANTS = {
    "default_postln_cfg": "default_postln_cfg",
    "layernorm_preln_args": "layernorm_preln_args",
    "layernorm_preln_ctc": "layernorm_preln_ctc",
    "default_postln_dictcfg": "default_postln_cfg",
}


def features(model: torch.nn.Module, waveform: np.ndarray) -> np.ndarray:
    """(1, samples) waveform -> (1, frames, hidden) last_hidden_state."""
    with torch.no_grad():
        return model(torch.from_numpy(waveform)).last_hidden_state.numpy()


@pytest.mark.parametrize("checkpoint, reference", VARIANTS.items())
def test_features_match_fairseq(checkpoint: str, reference: str) -> None:
    model = load_fairseq_wav2vec2(FIXTURES / f"{checkpoint}.pt")
    expected = np.load(FIXTURES / f"{reference}.npz")
    assert not model.training
    got = features(model, expected["waveform"])
    assert got.shape == expected["features"].shape == (1, 199, 32)
    assert np.abs(got - expected["features"]).max() < TOLERANCE


def test_config_variants_are_mapped() -> None:
    post_ln = load_fairseq_wav2vec2(FIXTURES / "default_postln_cfg.pt").config
    pre_ln = load_fairseq_wav2vec2(FIXTURES / "layernorm_preln_args.pt").config
    assert (post_ln.feat_extract_norm, post_ln.do_stable_layer_norm) == ("group", False)
    assert (pre_ln.feat_extract_norm, pre_ln.do_stable_layer_norm) == ("layer", True)
    assert pre_ln.conv_bias and not post_ln.conv_bias
    assert post_ln.conv_dim == [16, 16] and post_ln.conv_stride == [5, 2]
    assert not post_ln.apply_spec_augment


def test_spec_augment_uses_fairseq_masking() -> None:
    model = load_fairseq_wav2vec2(FIXTURES / "layernorm_preln_ctc.pt", apply_spec_augment=True)
    assert model.config.apply_spec_augment
    assert model.config.mask_time_prob == 0.5  # the fine-tuning config's mask_prob


def test_config_overrides_reach_the_modules() -> None:
    path = FIXTURES / "default_postln_cfg.pt"
    model = load_fairseq_wav2vec2(path, config_overrides={"hidden_dropout": 0.3})
    assert model.encoder.dropout.p == 0.3


def test_weight_norm_as_parametrization(tmp_path: Path) -> None:
    """Checkpoints saved with torch's parametrized weight norm load the same."""
    checkpoint = torch.load(FIXTURES / "default_postln_cfg.pt", weights_only=True)
    weights = checkpoint["model"]
    for old, new in (("weight_g", "original0"), ("weight_v", "original1")):
        weights[f"encoder.pos_conv.0.parametrizations.weight.{new}"] = weights.pop(
            f"encoder.pos_conv.0.{old}"
        )
    torch.save(checkpoint, tmp_path / "parametrized.pt")
    expected = np.load(FIXTURES / "default_postln_cfg.npz")
    got = features(load_fairseq_wav2vec2(tmp_path / "parametrized.pt"), expected["waveform"])
    assert np.abs(got - expected["features"]).max() < TOLERANCE


def test_save_pretrained_round_trip(tmp_path: Path) -> None:
    from transformers import Wav2Vec2Model

    main([str(FIXTURES / "layernorm_preln_args.pt"), str(tmp_path / "hf")])
    reloaded = Wav2Vec2Model.from_pretrained(tmp_path / "hf").eval()
    waveform = np.load(FIXTURES / "layernorm_preln_args.npz")["waveform"]
    converted = load_fairseq_wav2vec2(FIXTURES / "layernorm_preln_args.pt")
    np.testing.assert_array_equal(features(reloaded, waveform), features(converted, waveform))


def test_is_fairseq_checkpoint(tmp_path: Path) -> None:
    for name in VARIANTS:
        assert is_fairseq_checkpoint(FIXTURES / f"{name}.pt")
    torch.save({"state_dict": {"w": torch.zeros(2)}}, tmp_path / "other.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    assert not is_fairseq_checkpoint(tmp_path / "other.pt")
    assert not is_fairseq_checkpoint(tmp_path / "text.pt")
    assert not is_fairseq_checkpoint(tmp_path / "missing.pt")
    assert not is_fairseq_checkpoint(tmp_path)
    assert not is_fairseq_checkpoint("facebook/wav2vec2-base")


class _RunsShell:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("zip_format", [True, False])
def test_malicious_pickle_is_refused(tmp_path: Path, zip_format: bool) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"model": {"w": torch.zeros(1)}, "cfg": {"model": _RunsShell(marker)}}
    torch.save(payload, path, _use_new_zipfile_serialization=zip_format)
    assert is_fairseq_checkpoint(path)  # looks like one, and is never unpickled to say so
    with pytest.raises(UnsafeCheckpointError, match="refused to load.*GLOBAL posix.system"):
        load_fairseq_wav2vec2(path)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_raw_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(_RunsShell(marker)))
    with pytest.raises(FairseqCheckpointError):
        load_fairseq_wav2vec2(path)
    assert not marker.exists()


def _with_model_cfg(tmp_path: Path, **changes) -> Path:
    checkpoint = torch.load(FIXTURES / "default_postln_cfg.pt", weights_only=True)
    checkpoint["cfg"]["model"].update(changes)
    torch.save(checkpoint, tmp_path / "changed.pt")
    return tmp_path / "changed.pt"


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"layer_type": "conformer"}, "layer_type='conformer'"),
        ({"extractor_mode": "fancy"}, "extractor_mode='fancy'"),
        ({"pos_conv_depth": 5}, "pos_conv_depth=5"),
        ({"_name": "data2vec_audio"}, "'data2vec_audio' is not supported"),
        ({"conv_feature_layers": "__import__('os')"}, "conv_feature_layers"),
    ],
)
def test_unsupported_variant_is_named(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(FairseqCheckpointError, match=message.replace("(", r"\(")):
        load_fairseq_wav2vec2(_with_model_cfg(tmp_path, **changes))


def test_mismatched_weights_are_reported(tmp_path: Path) -> None:
    checkpoint = torch.load(FIXTURES / "default_postln_cfg.pt", weights_only=True)
    checkpoint["model"]["encoder.extra_block.weight"] = torch.zeros(1)
    torch.save(checkpoint, tmp_path / "extra.pt")
    with pytest.raises(FairseqCheckpointError, match="encoder.extra_block.weight"):
        load_fairseq_wav2vec2(tmp_path / "extra.pt")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FairseqCheckpointError, match="no such fairseq checkpoint"):
        load_fairseq_wav2vec2(tmp_path / "wav2vec_small.pt")


def test_parse_conv_layers() -> None:
    spec = "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] + [(512,2,2)]"
    layers = parse_conv_layers(spec)
    assert layers[0] == (512, 10, 5) and layers[1:5] == [(512, 3, 2)] * 4 and len(layers) == 7
