"""Inference: `Predictor` (checkpoint -> emotions for audio, with or without a transcript),
ASR for missing transcripts, and ONNX export."""

from .predictor import Prediction, Predictor, Request

__all__ = ["Prediction", "Predictor", "Request"]
