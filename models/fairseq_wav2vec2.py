"""fairseq wav2vec 2.0 checkpoints (`.pt`) as a transformers `Wav2Vec2Model`, without fairseq.

A fairseq checkpoint is a pickled dict `{"model": state_dict, "cfg": {...}}` (hydra, new) or
`{"model": ..., "args": argparse.Namespace}` (old, e.g. the original `wav2vec_small.pt`).
It is read with `torch.load(weights_only=True)`: only tensors, plain containers,
`argparse.Namespace` and inert stand-ins for omegaconf/numpy config values are allowed, so a
file that would run code on load is refused instead of executed.

Supported: pretrained `Wav2Vec2Model` and fine-tuned CTC (`w2v_encoder.w2v_model.*`; the CTC
projection is dropped) checkpoints, `extractor_mode` "default" (group norm in the first conv
layer) and "layer_norm", `layer_norm_first` False/True, `conv_bias`, weight-normed positional
conv. Dropped on purpose: pretraining heads (`quantizer`, `project_q`, `final_proj`,
`target_glu`). Anything else (data2vec, HuBERT, conformer layers, batch-norm or deep
positional conv, quantized inputs) raises `FairseqCheckpointError` naming the variant.

Convert once and reuse the HF directory:
    python -m models.fairseq_wav2vec2 wav2vec_small.pt checkpoints/wav2vec_small_hf
"""

from __future__ import annotations

import argparse
import ast
import collections
import pickle
import pickletools
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import Wav2Vec2Config, Wav2Vec2Model

from utils.errors import MMERError

FINETUNED_PREFIX = "w2v_encoder.w2v_model."
# Weights of fairseq's pretraining objective (and the CTC head): no counterpart in the encoder.
DROPPED_PREFIXES = ("quantizer.", "project_q.", "final_proj.", "target_glu.", "w2v_encoder.proj.")

# fairseq's Wav2Vec2Config defaults for the fields read here (old `args` may lack some).
FAIRSEQ_DEFAULTS: dict[str, Any] = {
    "extractor_mode": "default",
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "activation_fn": "gelu",
    "layer_type": "transformer",
    "dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.0,
    "encoder_layerdrop": 0.0,
    "dropout_input": 0.0,
    "layer_norm_first": False,
    "conv_feature_layers": "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] + [(512,2,2)]",
    "conv_bias": False,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "pos_conv_depth": 1,
    "conv_pos_batch_norm": False,
    "quantize_input": False,
    "crop_seq_to_multiple": 1,
    "mask_prob": 0.65,
    "mask_length": 10,
    "mask_channel_prob": 0.0,
    "mask_channel_length": 10,
}
# fairseq activation name -> transformers ACT2FN name (gelu_accurate/fast = tanh approximation).
ACTIVATIONS = {"gelu": "gelu", "relu": "relu", "gelu_accurate": "gelu_new", "gelu_fast": "gelu_new"}
SUPPORTED_MODEL_NAMES = ("wav2vec2", "wav2vec_ctc")


class FairseqCheckpointError(MMERError, ValueError):
    """A fairseq checkpoint that is missing, malformed or of an unsupported variant."""


class UnsafeCheckpointError(FairseqCheckpointError):
    """A checkpoint whose unpickling would need arbitrary code (refused, never executed)."""


# ---------------------------------------------------------------------------------------------
# Reading the file safely
# ---------------------------------------------------------------------------------------------


class _PickledObject:
    """Inert stand-in for an omegaconf/typing object inside a checkpoint: keeps its state only."""

    def __setstate__(self, state: Any) -> None:
        self.pickled_state = state


def _stand_in(full_name: str) -> tuple[type, str]:
    cls = type(full_name.rsplit(".", 1)[1], (_PickledObject,), {"full_name": full_name})
    return cls, full_name


_OMEGACONF_NAMES = [
    "omegaconf.dictconfig.DictConfig",
    "omegaconf.listconfig.ListConfig",
    "omegaconf.base.ContainerMetadata",
    "omegaconf.base.Metadata",
    "omegaconf.nodes.AnyNode",
    "omegaconf.nodes.StringNode",
    "omegaconf.nodes.IntegerNode",
    "omegaconf.nodes.FloatNode",
    "omegaconf.nodes.BooleanNode",
    "typing.Any",
]
# Plain types appear as omegaconf metadata (key/element types); calling them runs no file code.
_PLAIN_TYPES = [dict, list, tuple, int, float, bool, str, collections.defaultdict]
SAFE_GLOBALS: list[Any] = [
    argparse.Namespace,
    *_PLAIN_TYPES,
    *(_stand_in(name) for name in _OMEGACONF_NAMES),
]
# numpy scalars (e.g. a best-loss value in extra_state) rebuild from dtype + bytes only.
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    SAFE_GLOBALS.append((np._core.multiarray.scalar, f"{_module}.scalar"))
SAFE_GLOBALS += [np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.float32))]


def read_fairseq_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a fairseq `.pt` checkpoint without running code from it; configs become plain dicts."""
    path = Path(path)
    if not path.is_file():
        raise FairseqCheckpointError(f"{path}: no such fairseq checkpoint file")
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            checkpoint = torch.load(
                path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path)
            )
    except pickle.UnpicklingError as error:
        raise UnsafeCheckpointError(
            f"{path}: refused to load. Unpickling it needs more than tensors and plain config "
            f"values, so code from the file could run ({_refusal_reason(error)}). A fairseq "
            "wav2vec2 checkpoint holds only 'model' weights and a 'cfg'/'args' config; re-save "
            "those as plain data if you trust the file."
        ) from None
    except (RuntimeError, EOFError) as error:
        raise FairseqCheckpointError(f"{path}: not a readable torch checkpoint ({error})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise FairseqCheckpointError(f"{path}: expected a dict with a 'model' state dict")
    return _plain(checkpoint)


def _refusal_reason(error: Exception) -> str:
    """What torch's weights_only unpickler refused (e.g. "GLOBAL posix.system"), in one line."""
    text = str(error).split("WeightsUnpickler error:", 1)[-1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("Weights only load", "Check the"))]
    return (lines or [type(error).__name__])[0].split(" Please use")[0]


def _plain(value: Any) -> Any:
    """Turn Namespace / omegaconf stand-ins into dicts and lists, recursively; keep tensors."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, argparse.Namespace):
        return {k: _plain(v) for k, v in vars(value).items()}
    if isinstance(value, _PickledObject):
        state = getattr(value, "pickled_state", None)
        if isinstance(state, dict) and "_content" in state:  # DictConfig / ListConfig
            return _plain(state["_content"])
        if isinstance(state, dict) and "_val" in state:  # a value node
            return _plain(state["_val"])
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _pickle_strings(stream: Any) -> set[str]:
    """Strings in one pickle, read opcode by opcode (nothing is executed)."""
    return {arg for _, arg, _ in pickletools.genops(stream) if isinstance(arg, str)}


def is_fairseq_checkpoint(path: str | Path) -> bool:
    """Whether `path` is a torch file whose top-level pickle has fairseq's 'model' + 'cfg'/'args'.

    Cheap and safe: scans pickle opcodes without unpickling. It says nothing about whether the
    file is safe to load; `load_fairseq_wav2vec2` checks that.
    """
    path = Path(path)
    if not path.is_file():
        return False
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.endswith("/data.pkl")]
                if not names:
                    return False
                with archive.open(names[0]) as stream:
                    strings = _pickle_strings(stream)
        else:  # legacy torch format: magic number, protocol, sys info, then the object
            with path.open("rb") as stream:
                for _ in range(3):
                    _pickle_strings(stream)
                strings = _pickle_strings(stream)
    except Exception:  # any parse failure just means "not a fairseq checkpoint"
        return False
    return "model" in strings and bool({"cfg", "args"} & strings)


# ---------------------------------------------------------------------------------------------
# Config: fairseq -> transformers
# ---------------------------------------------------------------------------------------------


def _model_configs(checkpoint: dict[str, Any], path: Path) -> tuple[dict, dict]:
    """(top-level model config, wav2vec2 encoder config); they differ for fine-tuned models."""
    if checkpoint.get("cfg"):
        top = checkpoint["cfg"].get("model") or {}
    elif checkpoint.get("args"):
        top = checkpoint["args"]
    else:
        raise FairseqCheckpointError(f"{path}: has neither 'cfg' nor 'args' describing the model")
    name = top.get("_name") or top.get("arch")
    if name not in SUPPORTED_MODEL_NAMES and not (name or "").startswith("wav2vec2"):
        raise FairseqCheckpointError(
            f"{path}: fairseq model type {name!r} is not supported "
            f"(supported: {', '.join(SUPPORTED_MODEL_NAMES)})"
        )
    if not any(k.startswith(FINETUNED_PREFIX) for k in checkpoint["model"]):
        return top, top
    w2v_args = top.get("w2v_args")
    if isinstance(w2v_args, dict) and isinstance(w2v_args.get("model"), dict):
        return top, w2v_args["model"]  # hydra: the whole pretraining cfg
    if isinstance(w2v_args, dict) and w2v_args:
        return top, w2v_args  # argparse: the pretraining args
    raise FairseqCheckpointError(
        f"{path}: fine-tuned checkpoint without embedded 'w2v_args' (the pretraining config)"
    )


def parse_conv_layers(spec: str) -> list[tuple[int, int, int]]:
    """fairseq's conv_feature_layers string -> [(channels, kernel, stride), ...], without eval."""

    def evaluate(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.List | ast.Tuple):
            items = [evaluate(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mult):
            left, right = evaluate(node.left), evaluate(node.right)
            return left + right if isinstance(node.op, ast.Add) else left * right
        raise ValueError(ast.dump(node))

    try:
        layers = evaluate(ast.parse(spec, mode="eval").body)
        if not all(isinstance(t, tuple) and len(t) == 3 for t in layers):
            raise ValueError("not a list of 3-tuples")
    except (SyntaxError, ValueError, TypeError) as error:
        raise FairseqCheckpointError(
            f"conv_feature_layers {spec!r} is not a list of (dim, kernel, stride): {error}"
        ) from None
    return layers


def _check_supported(cfg: dict[str, Any], path: Path) -> None:
    problems = []
    if cfg["extractor_mode"] not in ("default", "layer_norm"):
        problems.append(f"extractor_mode={cfg['extractor_mode']!r} (need default|layer_norm)")
    if cfg["layer_type"] != "transformer":
        problems.append(f"layer_type={cfg['layer_type']!r} (need transformer)")
    if cfg["pos_conv_depth"] != 1:
        problems.append(f"pos_conv_depth={cfg['pos_conv_depth']} (need 1)")
    if cfg["conv_pos_batch_norm"]:
        problems.append("conv_pos_batch_norm=True")
    if cfg["quantize_input"]:
        problems.append("quantize_input=True")
    if cfg["crop_seq_to_multiple"] != 1:
        problems.append(f"crop_seq_to_multiple={cfg['crop_seq_to_multiple']} (need 1)")
    if cfg["activation_fn"] not in ACTIVATIONS:
        problems.append(f"activation_fn={cfg['activation_fn']!r} (need one of {list(ACTIVATIONS)})")
    if problems:
        raise FairseqCheckpointError(
            f"{path}: unsupported fairseq wav2vec2 variant: {'; '.join(problems)}"
        )


def hf_config_from_fairseq(
    top: dict[str, Any], encoder: dict[str, Any], *, path: Path, apply_spec_augment: bool
) -> Wav2Vec2Config:
    """Wav2Vec2Config equivalent to a fairseq wav2vec2 config (masking/dropout from `top`)."""
    cfg = {**FAIRSEQ_DEFAULTS, **{k: v for k, v in encoder.items() if v is not None}}
    _check_supported(cfg, path)
    # A fine-tuning config overrides masking and dropout of the pretrained encoder.
    train = {**cfg, **{k: top[k] for k in FAIRSEQ_DEFAULTS if top.get(k) is not None}}
    if top.get("layerdrop") is not None:  # the fine-tuning config's name for it
        train["encoder_layerdrop"] = top["layerdrop"]
    conv = parse_conv_layers(cfg["conv_feature_layers"])
    return Wav2Vec2Config(
        hidden_size=cfg["encoder_embed_dim"],
        num_hidden_layers=cfg["encoder_layers"],
        num_attention_heads=cfg["encoder_attention_heads"],
        intermediate_size=cfg["encoder_ffn_embed_dim"],
        hidden_act=ACTIVATIONS[cfg["activation_fn"]],
        feat_extract_norm="group" if cfg["extractor_mode"] == "default" else "layer",
        feat_extract_activation="gelu",
        conv_dim=[c[0] for c in conv],
        conv_kernel=[c[1] for c in conv],
        conv_stride=[c[2] for c in conv],
        conv_bias=bool(cfg["conv_bias"]),
        num_conv_pos_embeddings=cfg["conv_pos"],
        num_conv_pos_embedding_groups=cfg["conv_pos_groups"],
        do_stable_layer_norm=bool(cfg["layer_norm_first"]),
        layer_norm_eps=1e-5,
        hidden_dropout=train["dropout"],
        attention_dropout=train["attention_dropout"],
        activation_dropout=train["activation_dropout"],
        feat_proj_dropout=train["dropout_input"],
        layerdrop=train["encoder_layerdrop"],
        apply_spec_augment=apply_spec_augment,
        mask_time_prob=train["mask_prob"],
        mask_time_length=train["mask_length"],
        mask_feature_prob=train["mask_channel_prob"],
        mask_feature_length=train["mask_channel_length"],
        vocab_size=None,
    )


# ---------------------------------------------------------------------------------------------
# Weights: fairseq names -> transformers names
# ---------------------------------------------------------------------------------------------

POS_CONV_G = "encoder.pos_conv_embed.conv.weight_g"  # placeholders, resolved against the model
POS_CONV_V = "encoder.pos_conv_embed.conv.weight_v"
RENAMES: list[tuple[str, str]] = [
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.", r"feature_extractor.conv_layers.\1.conv."),
    # group norm (extractor_mode=default, first layer) / layer norm (inside TransposeLast)
    (
        r"feature_extractor\.conv_layers\.(\d+)\.2\.(1\.)?",
        r"feature_extractor.conv_layers.\1.layer_norm.",
    ),
    (r"layer_norm\.", "feature_projection.layer_norm."),
    (r"post_extract_proj\.", "feature_projection.projection."),
    (r"mask_emb", "masked_spec_embed"),
    (r"encoder\.pos_conv\.0\.bias", "encoder.pos_conv_embed.conv.bias"),
    (r"encoder\.pos_conv\.0\.(weight_g|parametrizations\.weight\.original0)", POS_CONV_G),
    (r"encoder\.pos_conv\.0\.(weight_v|parametrizations\.weight\.original1)", POS_CONV_V),
    (r"encoder\.layer_norm\.", "encoder.layer_norm."),
    (r"encoder\.layers\.(\d+)\.self_attn\.", r"encoder.layers.\1.attention."),
    (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.", r"encoder.layers.\1.layer_norm."),
    (r"encoder\.layers\.(\d+)\.fc1\.", r"encoder.layers.\1.feed_forward.intermediate_dense."),
    (r"encoder\.layers\.(\d+)\.fc2\.", r"encoder.layers.\1.feed_forward.output_dense."),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.", r"encoder.layers.\1.final_layer_norm."),
]


def _hf_name(fairseq_name: str) -> str | None:
    for pattern, replacement in RENAMES:
        renamed, count = re.subn(f"^{pattern}", replacement, fairseq_name)
        if count:
            return renamed
    return None


def convert_state_dict(
    fairseq_weights: dict[str, torch.Tensor], model: Wav2Vec2Model, *, path: Path
) -> dict[str, torch.Tensor]:
    """fairseq wav2vec2 weights (prefix already stripped) -> `model.state_dict()` names."""
    expected = model.state_dict()
    # transformers uses torch's parametrized weight norm when available, else weight_g/_v.
    weight_norm_names = {
        POS_CONV_G: next(k for k in expected if k.endswith(("original0", "weight_g"))),
        POS_CONV_V: next(k for k in expected if k.endswith(("original1", "weight_v"))),
    }
    converted, unknown = {}, []
    for name, tensor in fairseq_weights.items():
        if name.startswith(DROPPED_PREFIXES):
            continue
        hf_name = _hf_name(name)
        hf_name = weight_norm_names.get(hf_name, hf_name)
        if hf_name not in expected:
            unknown.append(name)
            continue
        converted[hf_name] = tensor
    if "feature_projection.projection.weight" not in converted:
        # fairseq skips post_extract_proj when conv channels == encoder dim: use identity.
        dim = model.config.hidden_size
        converted["feature_projection.projection.weight"] = torch.eye(dim)
        converted["feature_projection.projection.bias"] = torch.zeros(dim)
    missing = sorted(set(expected) - set(converted))
    if unknown or missing:
        raise FairseqCheckpointError(
            f"{path}: weights do not match a supported fairseq wav2vec2 layout; "
            f"unexpected fairseq weights {unknown[:8]}, missing transformers weights {missing[:8]}"
        )
    wrong_shapes = [k for k, v in converted.items() if v.shape != expected[k].shape]
    if wrong_shapes:
        raise FairseqCheckpointError(
            f"{path}: shapes differ from its config for {wrong_shapes[:8]}"
        )
    return converted


def load_fairseq_wav2vec2(
    path: str | Path,
    *,
    apply_spec_augment: bool = False,
    config_overrides: dict[str, Any] | None = None,
) -> Wav2Vec2Model:
    """A transformers Wav2Vec2Model (in eval mode) with the encoder weights of a fairseq `.pt`.

    Input: raw 16 kHz waveform (batch, samples), normalised as the fairseq model expects
    (`normalize=True` for layer_norm-extractor models). Output last_hidden_state:
    (batch, frames, encoder_embed_dim), frames = samples / 320 for the standard conv stack.
    `config_overrides` (e.g. {"layerdrop": 0.0}) are set on the Wav2Vec2Config before the model
    is built, so they take effect; they must not change the architecture.
    """
    path = Path(path)
    checkpoint = read_fairseq_checkpoint(path)
    top, encoder = _model_configs(checkpoint, path)
    config = hf_config_from_fairseq(top, encoder, path=path, apply_spec_augment=apply_spec_augment)
    for key, value in (config_overrides or {}).items():
        setattr(config, key, value)
    weights = checkpoint["model"]
    if any(k.startswith(FINETUNED_PREFIX) for k in weights):
        weights = {
            k[len(FINETUNED_PREFIX) :] if k.startswith(FINETUNED_PREFIX) else k: v
            for k, v in weights.items()
        }
    model = Wav2Vec2Model(config)
    model.load_state_dict(convert_state_dict(weights, model, path=path), strict=True)
    return model.eval()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="fairseq wav2vec 2.0 .pt file")
    parser.add_argument("out_dir", type=Path, help="directory for the transformers model")
    args = parser.parse_args(argv)
    try:
        model = load_fairseq_wav2vec2(args.checkpoint)
    except FairseqCheckpointError as error:
        parser.exit(1, f"error: {error}\n")
    model.save_pretrained(args.out_dir)
    print(f"wrote {args.out_dir} ({sum(p.numel() for p in model.parameters()):,} parameters)")


if __name__ == "__main__":
    main()
