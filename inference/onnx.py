"""ONNX export of a trained MMER model, and running the exported file with onnxruntime.

    python infer.py export --checkpoint exp/mmer/fold1/best --format onnx --output mmer.onnx

The graph maps (audio (batch, samples) float32 prepared and zero-padded, audio_lengths
(batch,) int64, text (batch, tokens, text_dim) float32, text_mask (batch, tokens) bool) to
emotion logits (batch, num_classes), with batch, samples and tokens dynamic. It is
padding-exact like the torch model. The file carries the model's config and checkpoint info
as metadata, so it is all a server needs besides the text encoder (and ASR) in torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.batch import View
from models.checkpoint import CheckpointError, CheckpointInfo
from models.config import MMERConfig
from models.mmer import MMERModel
from utils.io import atomic_path

INPUTS = ("audio", "audio_lengths", "text", "text_mask")
CONFIG_KEY, INFO_KEY = "mmer_config", "mmer_checkpoint_info"


class _LogitsGraph(nn.Module):
    """The model's inference forward with plain tensor inputs and outputs."""

    def __init__(self, model: MMERModel):
        super().__init__()
        self.model = model

    def forward(self, audio, audio_lengths, text, text_mask):
        return self.model(View(audio, audio_lengths, text, text_mask), with_ctc=False).logits


def export_onnx(model: MMERModel, info: CheckpointInfo, path: str | Path) -> Path:
    """Write `model` (fp32, eval) to `path` as ONNX, its config and info as metadata."""
    import onnx

    model = model.float().eval()
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([24_000, 17_000])
    audio = torch.randn(2, 24_000, generator=g) * (torch.arange(24_000) < lengths[:, None])
    text = torch.randn(2, 6, model.config.text_dim, generator=g)
    text_mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    batch, samples, tokens = (torch.export.Dim(n, min=m) for n, m in
                              (("batch", 1), ("samples", 1000), ("tokens", 1)))  # fmt: skip
    dynamic = {"audio": {0: batch, 1: samples}, "audio_lengths": {0: batch},
               "text": {0: batch, 1: tokens}, "text_mask": {0: batch, 1: tokens}}  # fmt: skip
    with torch.no_grad():
        program = torch.onnx.export(
            _LogitsGraph(model).eval(), (audio, lengths, text, text_mask), dynamo=True,
            input_names=list(INPUTS), output_names=["logits"], dynamic_shapes=dynamic,
            verbose=False,
        )  # fmt: skip
    proto = program.model_proto
    for key, value in ((CONFIG_KEY, model.config.to_dict()), (INFO_KEY, _info_dict(info))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))
    return path


def _info_dict(info: CheckpointInfo) -> dict:
    d = dict(vars(info))
    d.pop("assumed")
    return d


class OnnxBackend:
    """Logits of a `View` from an exported file, with onnxruntime on the CPU."""

    def __init__(self, path: str | Path):
        import onnxruntime as ort

        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types
            raise CheckpointError(f"{path}: not a readable ONNX model ({err})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if CONFIG_KEY not in meta:
            raise CheckpointError(f"{path}: no MMER metadata: export it with `infer.py export`")
        self.config = MMERConfig.from_dict(json.loads(meta[CONFIG_KEY]), source=str(path))
        self.info = CheckpointInfo(**json.loads(meta.get(INFO_KEY, "{}")))
        self.dtype = torch.float32

    def __call__(self, view: View) -> torch.Tensor:
        feeds = {
            "audio": view.audio.float().numpy(),
            "audio_lengths": view.audio_lengths.numpy().astype(np.int64),
            "text": view.text.float().numpy(),
            "text_mask": view.text_mask.numpy(),
        }
        names = {i.name for i in self.session.get_inputs()}  # unused inputs are pruned
        (logits,) = self.session.run(None, {k: v for k, v in feeds.items() if k in names})
        return torch.from_numpy(logits)
