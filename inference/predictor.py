"""`Predictor`: the one inference path, for evaluation, prediction, export and benchmarks.

    from inference import Predictor
    predictor = Predictor.load("exp/mmer/fold1/best")          # or an authors' .pt, or .onnx
    p = predictor.predict("clip.wav", text="I can't believe you did that")
    print(p.label, p.probabilities)                          # "ang" {"hap": 0.03, ...}
    p = predictor.predict(wave, sample_rate=44_100)            # no transcript: ASR makes one

Whatever the input, audio is converted to 16 kHz mono, cut and normalised
(`utils.audio.prepare`), batched with the training collate's padding (`training.data.pad_view`)
and run padding-exact, so an utterance gets the same logits from `predict`, from
`evaluate` and at any batch size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from models.batch import View
from models.checkpoint import CheckpointError, CheckpointInfo, is_native_checkpoint, load_model
from models.config import MMERConfig
from models.text_encoder import TextEncoder, TextEncoderError, TextEncoderInfo
from training.data import pad_view
from training.evaluation import Predictions, collect, forward_logits, to_inference_precision
from training.manifest import DataError, check_policy
from utils import audio as audio_io
from utils.precision import resolve_device, resolve_precision

AUTHORS_TEXT_ENCODER = TextEncoderInfo("roberta-base", 768)  # the paper's embeddings


@dataclass
class Prediction:
    label: str  # the predicted class name
    probabilities: dict[str, float]  # class name -> softmax probability
    logits: list[float]
    text: str | None  # the transcript the model saw (None: an audio-only model)
    text_source: str  # "given", "asr" or "none"
    source: str | None = None  # the file, when the input was a path

    def to_dict(self) -> dict:
        return dict(vars(self))


@dataclass
class Request:
    """One utterance to score: a wav path or a waveform (with its rate), and maybe a transcript."""

    audio: str | Path | np.ndarray
    sample_rate: int | None = None
    text: str | None = None


class TorchBackend:
    """Logits of a `View` from an MMERModel at the inference precision."""

    def __init__(self, model: torch.nn.Module, device: torch.device, precision: str):
        self.model = to_inference_precision(model.eval(), precision)
        self.device, self.precision = device, precision

    def __call__(self, view: View) -> torch.Tensor:
        return forward_logits(self.model, view, self.device, self.precision)


@dataclass
class Predictor:
    backend: Callable[[View], torch.Tensor]
    config: MMERConfig
    info: CheckpointInfo
    text_model: str | None = None  # --text_model (None: the one the checkpoint records)
    asr_model: str | None = None  # --asr_model (None: inference.asr.DEFAULT_ASR_MODEL)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    batch_size: int = 8
    log: Callable[[str], None] = print

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        checkpoint: str | Path,
        *,
        config: MMERConfig | None = None,
        experiment_data: object | None = None,
        device: str = "auto",
        precision: str = "auto",
        **kwargs,
    ) -> Predictor:
        """A checkpoint directory, an authors' `.pt` (with `config`), or an exported `.onnx`.
        `experiment_data` (a DataConfig) gives an authors' checkpoint its audio cut/padding."""
        path = Path(checkpoint)
        log = kwargs.get("log", print)
        dev = resolve_device(device)
        if path.suffix == ".onnx":
            from .onnx import OnnxBackend

            if not path.is_file():
                raise CheckpointError(f"{path}: checkpoint not found")
            backend = OnnxBackend(path)
            return cls(backend, backend.config, backend.info, device=dev, **kwargs)
        model = load_model(path, config, dev)
        if is_native_checkpoint(path):
            info = CheckpointInfo.read(path if path.is_dir() else path.parent)
        else:
            info = CheckpointInfo(text_encoder=AUTHORS_TEXT_ENCODER.to_dict(), assumed=[
                f"{path.name}: an authors' checkpoint records nothing: assuming their "
                "roberta-base embeddings, 16 kHz audio"
            ])  # fmt: skip
            if experiment_data is not None:
                info.max_audio_samples = experiment_data.max_audio_samples
                info.pad_quantum = experiment_data.pad_quantum
        for note in info.assumed:
            log(f"note: {note}")
        backend = TorchBackend(model, dev, resolve_precision(precision, dev))
        return cls(backend, model.config, info, device=dev, **kwargs)

    # -- the one forward ------------------------------------------------------------------------
    def logits(self, audios: Sequence[np.ndarray], texts: Sequence[np.ndarray]) -> torch.Tensor:
        """Prepared audio (S_i,) and token embeddings (T_i, D) -> logits (n, num_classes)."""
        out = []
        for start in range(0, len(audios), self.batch_size):
            chunk = audios[start : start + self.batch_size]
            # A lone utterance is not padded: the quantum exists to share one width in a batch
            # (and kernel plans across batches); unpadded is the authors' way of scoring, and
            # faster even with new kernel plans (docs/performance.md).
            quantum = self.info.pad_quantum if len(chunk) > 1 else 1
            view = pad_view(chunk, texts[start : start + self.batch_size], quantum)
            out.append(self.backend(view))
        return torch.cat(out)

    def evaluate(self, loader: Iterable) -> Predictions:
        """Logits for a manifest's utterances (precomputed embeddings), in loader order."""
        return collect(self.backend, loader)

    # -- prediction for new audio -----------------------------------------------------------
    def predict(
        self,
        audio: str | Path | np.ndarray,
        sample_rate: int | None = None,
        text: str | None = None,
    ) -> Prediction:
        """One utterance: a wav path, or a waveform (1-D, or (samples, channels)) and its rate."""
        [result] = self.predict_many([Request(audio, sample_rate, text)])
        return result

    def predict_many(
        self,
        requests: Sequence[Request],
        on_bad_input: str = "error",
        skipped: list[tuple[str, str]] | None = None,
        progress: bool = False,
    ) -> list[Prediction]:
        """Predictions in request order; under on_bad_input="skip" unreadable files are left
        out and listed in `skipped` as (file, reason)."""
        check_policy(on_bad_input)
        results: list[Prediction] = []
        chunk = max(1, self.batch_size)
        bar = tqdm(total=len(requests), disable=not progress, desc="predicting", unit="utt")
        for start in range(0, len(requests), chunk):
            loaded = []
            for req in requests[start : start + chunk]:
                try:
                    loaded.append((req, self._load_audio(req)))
                except DataError as err:
                    if on_bad_input == "error":
                        raise
                    if skipped is not None:
                        skipped.append((str(req.audio), str(err)))
            results += self._predict_loaded(loaded)
            bar.update(min(chunk, len(requests) - start))
        bar.close()
        return results

    def _load_audio(self, req: Request) -> np.ndarray:
        if isinstance(req.audio, (str, Path)):
            return audio_io.load(req.audio)
        if req.sample_rate is None:
            raise DataError("a waveform needs its sample_rate")
        return audio_io.to_16k_mono(np.asarray(req.audio, np.float32), req.sample_rate)

    def _predict_loaded(self, loaded: list[tuple[Request, np.ndarray]]) -> list[Prediction]:
        if not loaded:
            return []
        texts, sources = zip(*(self._transcript(req, wave) for req, wave in loaded), strict=True)
        if self.config.uses_text:
            embeddings = [e[0] for e in self.text_encoder(list(texts))]
        else:
            embeddings = [np.zeros((1, self.config.text_dim), np.float32)] * len(loaded)
        audios = [audio_io.prepare(wave, self.info.max_audio_samples) for _, wave in loaded]
        logits = self.logits(audios, embeddings)
        probs = logits.softmax(-1)
        names = self.info.class_names
        return [
            Prediction(
                label=names[int(p.argmax())],
                probabilities={c: float(v) for c, v in zip(names, p, strict=True)},
                logits=[float(v) for v in row],
                text=text,
                text_source=source,
                source=str(req.audio) if isinstance(req.audio, (str, Path)) else None,
            )
            for (req, _), text, source, row, p in zip(
                loaded, texts, sources, logits, probs, strict=True
            )  # fmt: skip
        ]

    # -- text: the checkpoint's encoder, and ASR when there is no transcript -----------------------
    def _transcript(self, req: Request, wave: np.ndarray) -> tuple[str | None, str]:
        """(the transcript the model sees, where it came from)."""
        if not self.config.uses_text:
            return None, "none"
        if req.text is not None:
            return req.text, "given"
        return self.transcriber(wave), "asr"

    @cached_property
    def text_encoder(self) -> TextEncoder:
        recorded = self.info.text_encoder and TextEncoderInfo.from_dict(self.info.text_encoder)
        name = self.text_model or (recorded.name if recorded else None)
        if name is None:
            raise TextEncoderError(
                "this checkpoint does not record its text encoder: give --text_model (the "
                "encoder that made its training embeddings, e.g. roberta-base)"
            )
        if self.text_model is None and recorded.sha256 and not Path(name).is_dir():
            raise TextEncoderError(
                f"the checkpoint's text encoder {recorded.describe()} is not on this machine: "
                "give --text_model with a copy of it"
            )
        encoder = TextEncoder(name, self.device)
        if recorded is not None:
            check_same_text_encoder(encoder.info, recorded, self.log)
        if encoder.info.hidden_size != self.config.text_dim:
            raise TextEncoderError(
                f"text encoder {encoder.info.describe()} gives {encoder.info.hidden_size}-d "
                f"embeddings; the model expects {self.config.text_dim}"
            )
        return encoder

    @cached_property
    def transcriber(self):
        from .asr import DEFAULT_ASR_MODEL, Transcriber

        name = self.asr_model or DEFAULT_ASR_MODEL
        self.log(f"no transcript given: transcribing with {name}")
        return Transcriber(name, str(self.device))


def check_same_text_encoder(
    given: TextEncoderInfo, recorded: TextEncoderInfo, log: Callable[[str], None] = print
) -> None:
    """An error when `given` is provably not the encoder the model was trained with."""
    differs = given.hidden_size != recorded.hidden_size or (
        given.sha256 and recorded.sha256 and given.sha256 != recorded.sha256
    )
    if differs:
        raise TextEncoderError(
            f"--text_model {given.describe()} is not the text encoder this model was trained "
            f"with, {recorded.describe()}"
        )
    if not (given.sha256 and recorded.sha256) and given.name != recorded.name:
        log(f"note: cannot verify that text encoder {given.describe()} is the recorded "
            f"{recorded.describe()}; assuming it is")  # fmt: skip
