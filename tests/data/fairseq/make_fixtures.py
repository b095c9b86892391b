"""Regenerate the tiny fairseq wav2vec 2.0 fixtures used by tests/test_fairseq_wav2vec2.py.

Needs fairseq (not needed by the tests themselves). One-time setup and run, from the repo root:
    python3.11 -m venv /tmp/venv-fairseq
    /tmp/venv-fairseq/bin/pip install torch==2.13.0        # first: keeps the CPU wheel
    /tmp/venv-fairseq/bin/pip install fairseq-fixed==0.12.3.1
    /tmp/venv-fairseq/bin/python tests/data/fairseq/make_fixtures.py

Writes, next to this script, for each variant NAME:
    NAME.pt   the checkpoint laid out as fairseq writes it ({"cfg"|"args", "model", ...})
    NAME.npz  waveform (1, 2000) float32 and features (1, frames, 32) float32: fairseq's
              `extract_features(..., mask=False)["x"]` of the model re-loaded from NAME.pt
Variants:
    default_postln_cfg    extractor_mode=default, layer_norm_first=False, hydra `cfg`,
                          pretraining heads (quantizer, project_q, final_proj) included
    layernorm_preln_args  extractor_mode=layer_norm, layer_norm_first=True, conv_bias=True,
                          old argparse `args` (like the original wav2vec_small.pt)
    layernorm_preln_ctc   the layernorm_preln weights inside a fine-tuned CTC model (`cfg`)
and default_postln_dictcfg.pt: default_postln_cfg re-saved after fairseq's
load_checkpoint_to_cpu, i.e. with `cfg` as an omegaconf DictConfig object (features as
default_postln_cfg.npz).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from fairseq import checkpoint_utils, options, tasks
from fairseq.dataclass.configs import FairseqConfig
from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Config
from fairseq.models.wav2vec.wav2vec2_asr import Wav2Vec2CtcConfig, Wav2VecCtc
from fairseq.tasks.audio_pretraining import AudioPretrainingConfig
from omegaconf import DictConfig, OmegaConf

HERE = Path(__file__).parent
TINY = {
    "conv_feature_layers": "[(16, 10, 5), (16, 3, 2)]",
    "encoder_embed_dim": 32,
    "encoder_layers": 2,
    "encoder_attention_heads": 2,
    "encoder_ffn_embed_dim": 64,
    "conv_pos": 8,
    "conv_pos_groups": 4,
}
QUANTIZER = {"quantize_targets": True, "latent_vars": 4, "latent_groups": 2, "final_dim": 8}
LAYER_NORM_PRE_LN = {"extractor_mode": "layer_norm", "layer_norm_first": True, "conv_bias": True}
CTC_TASK = argparse.Namespace(target_dictionary=list(range(6)))  # a 6-letter CTC vocabulary


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Move every weight off its init (norm gains != 1, biases != 0) so the test sees them all."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if "norm" in name and name.endswith("weight"):
                param.copy_(1.0 + 0.2 * noise)
            elif name.endswith("bias") or name.endswith("mask_emb"):
                param.copy_(0.1 * noise)
            else:
                param.add_(0.1 * param.std().nan_to_num(0.1) * noise)


def full_config(model_cfg) -> DictConfig:
    """A complete fairseq run config (common, task, model, ...) around `model_cfg`."""
    cfg = FairseqConfig()
    cfg.model = model_cfg
    cfg.task = AudioPretrainingConfig(_name="audio_pretraining", data="unused")
    return OmegaConf.structured(cfg)


def hydra_cfg(model_cfg) -> dict:
    """The `cfg` entry fairseq's Trainer.state_dict writes: OmegaConf.to_container(...)."""
    return OmegaConf.to_container(full_config(model_cfg), resolve=True, enum_to_str=True)


def trainer_state(model: torch.nn.Module, cfg: dict | None, args=None) -> dict:
    """Checkpoint dict with the keys fairseq's Trainer.state_dict writes (no optimizer state)."""
    return {
        "args": args,
        "cfg": cfg,
        "model": model.state_dict(),
        "criterion": None,
        "optimizer_history": [
            {
                "criterion_name": "Wav2vecCriterion",
                "optimizer_name": "FairseqAdam",
                "lr_scheduler_state": {"best": 3.25},
                "num_updates": 100,
            }
        ],
        "task_state": {},
        "extra_state": {"metrics": {}, "previous_training_time": 12.5},
    }


def reference_features(path: Path, waveform: torch.Tensor) -> torch.Tensor:
    """Features of the model fairseq itself re-loads from `path` (eval mode, no masking)."""
    # fairseq 0.12 calls torch.load with torch's default weights_only=True (torch >= 2.6),
    # which refuses the argparse.Namespace of old checkpoints; the file is ours, allow it.
    with torch.serialization.safe_globals([argparse.Namespace]):
        state = checkpoint_utils.load_checkpoint_to_cpu(str(path))
    if state["cfg"].model._name == "wav2vec_ctc":
        # audio_finetuning needs a label dictionary on disk; the CTC head only needs len().
        model = Wav2VecCtc.build_model(state["cfg"].model, CTC_TASK)
        model.load_state_dict(state["model"], strict=True)
        model = model.w2v_encoder.w2v_model
    else:
        with torch.serialization.safe_globals([argparse.Namespace]):
            models, _, _ = checkpoint_utils.load_model_ensemble_and_task([str(path)])
        model = models[0]
    with torch.no_grad():
        return model.eval().extract_features(waveform, padding_mask=None, mask=False)["x"]


def legacy_args(overrides: dict) -> argparse.Namespace:
    """An argparse Namespace as old fairseq (wav2vec_small.pt) stored it."""
    argv = ["unused", "--task", "audio_pretraining", "--arch", "wav2vec2"]
    for key, value in {**TINY, **overrides}.items():
        flag = "--" + key.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    return options.parse_args_and_arch(options.get_training_parser(), argv)


def write(name: str, checkpoint: dict, waveform: torch.Tensor) -> None:
    path = HERE / f"{name}.pt"
    checkpoint_utils.torch_persistent_save(checkpoint, str(path))
    features = reference_features(path, waveform)
    np.savez(HERE / f"{name}.npz", waveform=waveform.numpy(), features=features.numpy())
    print(f"{path.name}: {path.stat().st_size / 1024:.0f} KiB, features {tuple(features.shape)}")


def main() -> None:
    torch.manual_seed(0)
    waveform = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 2000), np.float32))
    cfg = Wav2Vec2Config(_name="wav2vec2", **TINY, **QUANTIZER)
    task = tasks.setup_task(full_config(cfg).task)
    model = task.build_model(full_config(cfg).model)
    randomize(model, seed=1)
    write("default_postln_cfg", trainer_state(model, hydra_cfg(cfg)), waveform)

    args = legacy_args(LAYER_NORM_PRE_LN)
    model = task.build_model(args)
    randomize(model, seed=2)
    write("layernorm_preln_args", trainer_state(model, None, args), waveform)

    pretrain_cfg = hydra_cfg(Wav2Vec2Config(_name="wav2vec2", **TINY, **LAYER_NORM_PRE_LN))
    ctc_cfg = Wav2Vec2CtcConfig(
        _name="wav2vec_ctc", w2v_args=OmegaConf.create(pretrain_cfg), mask_prob=0.5, apply_mask=True
    )
    ctc = Wav2VecCtc.build_model(full_config(ctc_cfg).model, CTC_TASK)
    ctc.w2v_encoder.w2v_model.load_state_dict(model.state_dict())
    write("layernorm_preln_ctc", trainer_state(ctc, hydra_cfg(ctc_cfg)), waveform)

    state = checkpoint_utils.load_checkpoint_to_cpu(str(HERE / "default_postln_cfg.pt"))
    torch.save(state, HERE / "default_postln_dictcfg.pt")


if __name__ == "__main__":
    main()
