"""Transcripts for audio that comes without one (MMER needs a transcript to fuse with).

Any model that `transformers.pipeline("automatic-speech-recognition")` loads works: Whisper,
wav2vec2-CTC, ... by hub id or local directory. Long audio is cut into 30 s chunks with
overlapping strides, as the pipeline documents for both CTC and Whisper models.
"""

from __future__ import annotations

import numpy as np

from utils.errors import MMERError

# English-only like IEMOCAP and MSP-Podcast; 244 M parameters, a few times real time on a
# laptop CPU, where whisper-large-v3 (1.5 B) would be ~6x slower for a small gain in WER.
DEFAULT_ASR_MODEL = "openai/whisper-small.en"
CHUNK_SECONDS = 30.0  # Whisper's window; CTC models take the same chunking


class TranscriberError(MMERError, ValueError):
    """The ASR model cannot be loaded."""


def pipeline_options(model_type: str, multilingual: bool = False) -> dict:
    """Call options for the ASR pipeline: chunked long-form decoding for every model type;
    English transcription forced on multilingual Whisper checkpoints (".en" ones refuse a
    task or language)."""
    options: dict = {"chunk_length_s": CHUNK_SECONDS, "stride_length_s": CHUNK_SECONDS / 6}
    if model_type == "whisper" and multilingual:
        options["generate_kwargs"] = {"task": "transcribe", "language": "en"}
    return options


class Transcriber:
    """wave (16 kHz mono float32) -> transcript, with an ASR model."""

    def __init__(self, model: str = DEFAULT_ASR_MODEL, device: str = "cpu"):
        from transformers import pipeline

        try:
            self.pipe = pipeline("automatic-speech-recognition", model=model, device=device)
        except (OSError, ValueError) as err:
            raise TranscriberError(
                f"could not load the ASR model {model!r}: {str(err).splitlines()[0]}\n"
                "Give a transcript (--text), or --asr_model with a hub id or a local directory."
            ) from None
        self.name = model
        generation = getattr(self.pipe.model, "generation_config", None)  # seq2seq models only
        multilingual = bool(getattr(generation, "is_multilingual", False))
        self.options = pipeline_options(self.pipe.model.config.model_type, multilingual)

    def __call__(self, wave: np.ndarray, sample_rate: int = 16_000) -> str:
        out = self.pipe({"raw": np.asarray(wave, np.float32), "sampling_rate": sample_rate},
                        **self.options)  # fmt: skip
        return out["text"].strip()
