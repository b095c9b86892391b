"""Saving and loading MMER weights: this project's format and the authors' released `.pt`.

Native format: a directory with `model.safetensors`, `config.json` (MMERConfig) and
`inference.json` (`CheckpointInfo`: classes, sample rate, audio cut, padding, the text
encoder that made the training embeddings, the run's effective experiment).
Authors' format: `torch.save({'state_dict': FuseModel.state_dict()})`, keys possibly
prefixed with `module.` (DataParallel). The only place the authors' names live is
`AUTHORS_MODULES` / `AUTHORS_BLOCK_PARAMS` below; import and export both use them.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from utils.audio import MAX_AUDIO_SAMPLES
from utils.errors import MMERError
from utils.io import atomic_path, write_json_atomic

from .config import MMERConfig
from .mmer import MMERModel

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
INFO_NAME = "inference.json"
CLASS_NAMES = ["hap", "ang", "neu", "sad"]  # DESIGN.md: IEMOCAP-4, hap = hap + exc


@dataclass
class CheckpointInfo:
    """What a checkpoint says about the inputs it expects (beside its MMERConfig)."""

    class_names: list[str] = field(default_factory=lambda: list(CLASS_NAMES))
    sample_rate: int = 16_000  # Hz of the audio the encoder takes
    max_audio_samples: int = MAX_AUDIO_SAMPLES  # audio is cut to its first N samples
    pad_quantum: int = 4000  # batches are zero-padded to a multiple of N samples
    # {"name", "hidden_size", "sha256"} of the text encoder behind the training embeddings
    text_encoder: dict | None = None
    experiment: dict | None = None  # the run's effective config (model, data, train)
    assumed: list[str] = field(default_factory=list)  # what was not recorded (older files)

    @classmethod
    def read(cls, directory: str | Path) -> CheckpointInfo:
        path = Path(directory) / INFO_NAME
        if not path.is_file():
            return cls(assumed=[
                f"no {INFO_NAME} in {directory} (made before checkpoints recorded it): assuming "
                f"classes {'/'.join(CLASS_NAMES)}, 16 kHz audio cut at {MAX_AUDIO_SAMPLES} samples, and an "
                "unknown text encoder"
            ])  # fmt: skip
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as err:
            raise CheckpointError(f"{path}: not a checkpoint info file ({err})") from None

    def write(self, directory: str | Path) -> None:
        d = asdict(self)
        d.pop("assumed")
        write_json_atomic(Path(directory) / INFO_NAME, d)


# our module -> the authors' module (FuseModel attribute path)
AUTHORS_MODULES = {
    "audio_encoder": "model_mmi.wav2vec2",
    "text_self_attention": "model_mmi.self_attention_v2.layer.0",
    "text_to_audio": "model_mmi.txt2img_attention.layer.0",  # X1
    "audio_to_text": "model_mmi.img2txt_attention.layer.0",  # X2
    "text_to_text_aware_audio": "model_mmi.txt2txt_attention.layer.0",  # X3
    "audio_keys": "model_mmi.vismap2text",  # Linear_a
    "audio_queries": "model_mmi.vismap2text_v2",  # Linear_b
    "gate": "model_mmi.gate",
    "fused_proj": "model_mmi.downsample_final",
    "classifier": "model_mmi.classifier.linear3",
    "ctc_head": "model_mmi.ctc_linear",
    "projection": "orgin_linear_change",  # P
    "augmented_projection": "augment_linear_change",  # P'
}
# inside each AttentionBlock: our parameter -> the BERT layer's
AUTHORS_BLOCK_PARAMS = {
    "query": "attention.self.query",
    "key": "attention.self.key",
    "value": "attention.self.value",
    "attn_out": "attention.output.dense",
    "attn_norm": "attention.output.LayerNorm",
    "ffn_in": "intermediate.dense",
    "ffn_out": "output.dense",
    "ffn_norm": "output.LayerNorm",
}
BLOCKS = ("text_self_attention", "text_to_audio", "audio_to_text", "text_to_text_aware_audio")
# The positional conv's weight norm: transformers < 4.31 saved weight_g / weight_v.
_WEIGHT_NORM = {
    "pos_conv_embed.conv.parametrizations.weight.original0": "pos_conv_embed.conv.weight_g",
    "pos_conv_embed.conv.parametrizations.weight.original1": "pos_conv_embed.conv.weight_v",
}
# In the authors' model but unused by its forward (layer weights of a dropped experiment).
AUTHORS_UNUSED = ("model_mmi.weights",)


class CheckpointError(MMERError, ValueError):
    """A checkpoint cannot be read, or does not fit the model."""


# -- safe reading --------------------------------------------------------------------------
def safe_torch_load(path: str | Path) -> object:
    """`torch.load` that never runs code from the file (weights_only=True)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError, EOFError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path}: refused to load. Only plain tensors and containers are read "
            f"(weights_only=True); this file needs arbitrary unpickling, which could run "
            f"code from whoever made it ({first}).\n"
            "If you trust the file, convert it once in a Python shell:\n"
            "  sd = torch.load(PATH, weights_only=False)['state_dict']\n"
            "  torch.save({'state_dict': {k: v for k, v in sd.items()}}, 'clean.pt')"
        ) from None


# -- native format -------------------------------------------------------------------------
def save_model(model: MMERModel, directory: str | Path, info: CheckpointInfo | None = None) -> Path:
    """Write `model.safetensors`, `config.json` and `inference.json` (each atomically)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "producer": "mmer"})
    with atomic_path(directory / CONFIG_NAME) as tmp:
        model.config.to_json(tmp)
    (info or CheckpointInfo()).write(directory)
    return directory


def is_native_checkpoint(path: str | Path) -> bool:
    path = Path(path)
    return (path / WEIGHTS_NAME).is_file() or path.suffix == ".safetensors"


def load_model(
    path: str | Path, config: MMERConfig | None = None, device: str | torch.device = "cpu"
) -> MMERModel:
    """Load a native checkpoint directory or an authors' `.pt` file into a ready model.

    The encoder is built from its architecture only: the checkpoint has its weights.
    `config` is required for the authors' files (they carry none) and otherwise taken
    from the checkpoint's `config.json`.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    if is_native_checkpoint(path):
        directory = path if path.is_dir() else path.parent
        weights = directory / WEIGHTS_NAME if path.is_dir() else path
        config = MMERConfig.from_json(directory / CONFIG_NAME)
        state = load_file(str(weights))
    else:
        if config is None:
            raise CheckpointError(f"{path}: an authors' checkpoint needs a config (--config)")
        state = from_authors_state_dict(read_authors_checkpoint(path))
    config = MMERConfig.from_dict({**config.to_dict(), "audio_encoder_pretrained": False})
    model = MMERModel(config)
    load_state_dict_checked(model, state, source=str(path))
    return model.to(device).eval()


def load_state_dict_checked(
    model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str
) -> None:
    """Strict load with one readable message listing missing, unexpected and mis-shaped keys."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(state))
        if state[k].shape != expected[k].shape
    ]
    if missing or unexpected or shapes:
        parts = [f"{source} does not fit the model built from its config:"]
        for title, items in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", shapes),
        ):
            if items:
                shown = "\n    ".join(items[:10])
                more = f"\n    ... and {len(items) - 10} more" if len(items) > 10 else ""
                parts.append(f"  {len(items)} {title} key(s):\n    {shown}{more}")
        raise CheckpointError("\n".join(parts))
    model.load_state_dict(state, strict=True)


# -- the authors' format -------------------------------------------------------------------
def read_authors_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    obj = safe_torch_load(path)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            f"{path}: expected {{'state_dict': {{name: tensor}}}} as the authors saved it"
        )
    return state


def from_authors_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an authors' FuseModel state dict to this model's names.

    Keys that match nothing keep their own name, so that the strict load reports them as
    unexpected instead of silently dropping them.
    """
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key not in AUTHORS_UNUSED:
            out[_to_ours(key) or key] = value
    return out


def to_authors_state_dict(model: MMERModel) -> dict[str, torch.Tensor]:
    """This model's weights under the authors' names (loadable by their FuseModel)."""
    cfg = model.config
    if cfg.modalities != "both" or cfg.text_dim != cfg.hidden_size:
        raise CheckpointError(
            "only the paper architecture (both modalities, text_dim == hidden_size) exists "
            "in the authors' layout"
        )
    state = model.state_dict()
    extra = sorted({k.partition(".")[0] for k in state} - set(AUTHORS_MODULES))
    if extra:  # e.g. the head of an auxiliary loss added since: their model has no place for it
        raise CheckpointError(
            f"the authors' layout has no place for module(s) {extra}: export a model "
            "without them, or keep this project's format (save_model)"
        )
    out = {_to_theirs(k): v.detach().cpu() for k, v in state.items()}
    out["model_mmi.weights"] = torch.zeros(model.audio_encoder.config.num_hidden_layers + 1)
    return out


def export_authors_checkpoint(model: MMERModel, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        torch.save({"state_dict": to_authors_state_dict(model)}, tmp)


def _to_theirs(key: str) -> str:
    module, _, rest = key.partition(".")
    if module in BLOCKS:
        param, _, leaf = rest.partition(".")
        rest = f"{AUTHORS_BLOCK_PARAMS[param]}.{leaf}"
    for new, old in _WEIGHT_NORM.items():  # written in the authors' (old) naming
        rest = rest.replace(new, old)
    return f"{AUTHORS_MODULES[module]}.{rest}"


def _to_ours(key: str) -> str | None:
    for module, prefix in AUTHORS_MODULES.items():
        if not key.startswith(prefix + "."):
            continue
        rest = key[len(prefix) + 1 :]
        if module in BLOCKS:
            for param, theirs in AUTHORS_BLOCK_PARAMS.items():
                if rest.startswith(theirs + "."):
                    return f"{module}.{param}.{rest[len(theirs) + 1 :]}"
            return None
        for new, old in _WEIGHT_NORM.items():
            rest = rest.replace(old, new)
        return f"{module}.{rest}"
    return None
