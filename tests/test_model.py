"""MMERModel: output shapes, padding invariance, gradient flow, modality switches."""

import dataclasses

import pytest
import torch

from models.config import ConfigError, MMERConfig
from models.mmer import MMERModel

from .conftest import random_batch, random_view


def test_output_shapes_and_dtypes(tiny_config, batch):
    torch.manual_seed(0)
    model = MMERModel(tiny_config).eval()
    out = model(batch.view)
    b = len(batch)
    frames = model.audio_encoder._get_feat_extract_output_lengths(torch.tensor(16000)).item()
    assert out.logits.shape == (b, 4) and out.logits.dtype == torch.float32
    assert out.features.shape == (b, 64 + 32)  # [audio_dim ; hidden]
    assert out.ctc_logits.shape == (b, frames, 32)
    # frame lengths come from the conv arithmetic on the true sample counts
    expected = model.audio_encoder._get_feat_extract_output_lengths(batch.view.audio_lengths)
    assert torch.equal(out.frame_lengths, expected) and out.frame_lengths.dtype == torch.int64


def test_fusion_is_padding_invariant_given_the_same_frames(tiny_config):
    torch.manual_seed(0)
    model = MMERModel(tiny_config).eval()
    frames = torch.randn(3, 40, 64)
    frame_lengths = torch.tensor([40, 25, 9])
    view = random_view(tokens=(7, 4, 2))
    full = model.fuse(frames, frame_lengths, view.text, view.text_mask)
    for i in range(3):
        n, t = frame_lengths[i], int(view.text_mask[i].sum())
        alone = model.fuse(
            frames[i : i + 1, :n],
            frame_lengths[i : i + 1],
            view.text[i : i + 1, :t],
            view.text_mask[i : i + 1, :t],
        )
        torch.testing.assert_close(alone.logits[0], full.logits[i], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(alone.features[0], full.features[i], atol=1e-5, rtol=1e-5)


def test_gradients_reach_every_trainable_parameter_and_not_the_cnn(tiny_config, batch):
    torch.manual_seed(0)
    cfg = dataclasses.replace(tiny_config, audio_encoder_overrides={"layerdrop": 0.0})
    model = MMERModel(cfg).train()
    model.compute_objectives(batch).loss.backward()
    cnn = {
        n for n, _ in model.named_parameters() if n.startswith("audio_encoder.feature_extractor.")
    }
    assert cnn, "the CNN feature encoder should exist"
    for name, p in model.named_parameters():
        if name in cnn or name == "audio_encoder.masked_spec_embed":  # SpecAugment is off
            assert not p.requires_grad and p.grad is None, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient for {name}"


def test_objectives_follow_the_switches(tiny_config, batch):
    torch.manual_seed(0)
    full = MMERModel(tiny_config).compute_objectives(batch)
    assert set(full.parts()) == {"loss", "ce", "ctc", "scl", "acl"}
    aux = full.auxiliary
    expected = full.ce + 0.1 * (aux["ctc"] + aux["scl"] + aux["acl"])
    torch.testing.assert_close(full.loss, expected)

    for switch, gone in (("use_ctc", "ctc"), ("use_scl", "scl"), ("use_acl", "acl")):
        cfg = dataclasses.replace(tiny_config, **{switch: False})
        parts = MMERModel(cfg).compute_objectives(batch).parts()
        assert gone not in parts and "ce" in parts

    no_aug = MMERModel(tiny_config).compute_objectives(random_batch(augmented=False))
    assert "acl" not in no_aug.auxiliary  # the augmented pass needs an augmented view


def test_audio_only_and_text_only_ablations(tiny_config):
    batch = random_batch()
    audio = MMERModel(dataclasses.replace(tiny_config, modalities="audio"))
    assert not hasattr(audio, "text_self_attention") and audio.feature_dim == 64
    out = audio(batch.view)
    assert out.logits.shape == (3, 4)
    # the text path is unused: changing the text changes nothing
    batch.view.text.normal_()
    torch.testing.assert_close(audio.eval()(batch.view).logits, audio(batch.view).logits)

    text = MMERModel(dataclasses.replace(tiny_config, modalities="text"))
    assert not hasattr(text, "audio_encoder") and text.feature_dim == 32
    objectives = text.compute_objectives(batch)
    assert "ctc" not in objectives.auxiliary and objectives.output.ctc_logits is None


def test_text_projection_only_when_widths_differ(tiny_config):
    same = MMERModel(tiny_config)
    assert isinstance(same.text_proj, torch.nn.Identity)
    other = MMERModel(dataclasses.replace(tiny_config, text_dim=24))
    assert other.text_proj.in_features == 24
    assert other(random_view(text_dim=24)).logits.shape == (3, 4)


@pytest.mark.parametrize("implementation", ["sdpa", "auto"])
@pytest.mark.parametrize("cnn_norm", ["group", "layer"])  # layer: the encoder gets a padding mask
def test_attention_kernels_agree_with_the_reference_eager_math(
    tiny_config, batch, implementation, cnn_norm
):
    """The kernel is a speed choice: logits and gradients equal eager's on a padded batch."""
    no_dropout = dict(hidden_dropout=0.0, attention_dropout=0.0, ctc_dropout=0.0)
    overrides = {
        **tiny_config.audio_encoder_overrides,
        "hidden_dropout": 0.0,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
        "feat_proj_dropout": 0.0,
        "layerdrop": 0.0,
        "feat_extract_norm": cnn_norm,
    }
    base = dataclasses.replace(tiny_config, audio_encoder_overrides=overrides, **no_dropout)
    torch.manual_seed(0)
    eager = MMERModel(dataclasses.replace(base, attention_implementation="eager"))
    other = MMERModel(dataclasses.replace(base, attention_implementation=implementation))
    other.load_state_dict(eager.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(
            other.eval()(batch.view).logits, eager.eval()(batch.view).logits, atol=1e-5, rtol=1e-4
        )
    for model in (eager, other):
        model.train().compute_objectives(batch).loss.backward()
    for (name, a), b in zip(eager.named_parameters(), other.parameters(), strict=True):
        if a.grad is not None:
            torch.testing.assert_close(b.grad, a.grad, atol=1e-5, rtol=1e-3, msg=name)


def test_config_rejects_unknown_keys_and_wrong_types():
    with pytest.raises(ConfigError, match="unknown key.*hiden_size.*Valid keys"):
        MMERConfig.from_dict({"hiden_size": 3})
    with pytest.raises(ConfigError, match="lambda_aux must be float"):
        MMERConfig.from_dict({"lambda_aux": "0.1"})
    with pytest.raises(ConfigError, match="modalities"):
        MMERConfig.from_dict({"modalities": "video"})
    assert MMERConfig.from_dict({"lambda_aux": 1}).lambda_aux == 1.0


def test_a_new_auxiliary_loss_is_one_function_and_one_config_entry(tiny_config, batch):
    from models.objectives import AUXILIARY_LOSSES, auxiliary_loss

    @auxiliary_loss("feature_norm", heads=("norm_head",))
    def feature_norm(x):  # a toy regulariser on the pooled features
        return x.output.features.pow(2).mean()

    try:
        cfg = dataclasses.replace(
            tiny_config, auxiliary_losses={**tiny_config.auxiliary_losses, "feature_norm": 0.5}
        )
        torch.manual_seed(0)
        objectives = MMERModel(cfg).compute_objectives(batch)
        assert set(objectives.parts()) == {"loss", "ce", "ctc", "scl", "acl", "feature_norm"}
        aux = objectives.auxiliary
        weighted = aux["ctc"] + aux["scl"] + aux["acl"] + 0.5 * aux["feature_norm"]
        torch.testing.assert_close(objectives.loss, objectives.ce + 0.1 * weighted)
    finally:
        del AUXILIARY_LOSSES["feature_norm"]
    with pytest.raises(ConfigError, match="unknown loss.*feature_norm"):
        dataclasses.replace(tiny_config, auxiliary_losses={"feature_norm": 1.0})
