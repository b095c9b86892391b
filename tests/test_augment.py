import pandas as pd
import pytest
import soundfile as sf
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    M2M100Config,
    M2M100ForConditionalGeneration,
    MarianConfig,
    MarianMTModel,
    PreTrainedTokenizerFast,
)

from data_prep import augment_audio, augment_text
from tests.fixtures import rows, write_csv
from training.data import index_augmented_audio

WORDS = "hello number in session one two three four five bonjour le la de et".split()


def tiny_tokenizer(path, extra=()):
    vocab = {
        t: i
        for i, t in enumerate(
            ["<pad>", "</s>", "<unk>", *extra, *WORDS, "0", "1", "2", ".", "Hello"]
        )
    }
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    fast.save_pretrained(path)
    return fast


# A translation model small enough to build and run in a test (its output is gibberish).
TINY_SEQ2SEQ = dict(
    d_model=16,
    encoder_layers=1,
    decoder_layers=1,
    encoder_attention_heads=2,
    decoder_attention_heads=2,
    encoder_ffn_dim=32,
    decoder_ffn_dim=32,
    max_position_embeddings=64,
)


def tiny_marian(path, seed):
    import torch

    torch.manual_seed(seed)
    tok = tiny_tokenizer(path)
    cfg = MarianConfig(
        vocab_size=len(tok),
        **TINY_SEQ2SEQ,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        forced_eos_token_id=1,
    )
    MarianMTModel(cfg).save_pretrained(path)
    return path


def test_choose_rule():
    assert augment_text.choose("Hello there.", ["hello there", "Hi there.", "x"]) == "Hi there."
    assert augment_text.choose("Hello.", ["hello", "HELLO!"]) == "hello"
    assert augment_text.choose("Hello.", ["", " "]) == "Hello."


def test_back_translation_marian_pair_writes_csv_and_is_idempotent(tmp_path, capsys):
    fwd, bwd = tiny_marian(tmp_path / "fwd", 0), tiny_marian(tmp_path / "bwd", 1)
    data = rows(2, (1,))
    data[1]["AugmentedText"] = "An existing paraphrase."
    csv = write_csv(tmp_path / "m.csv", data)
    args = [
        "--csv",
        str(csv),
        "--forward_model",
        str(fwd),
        "--backward_model",
        str(bwd),
        "--src_lang",
        "",
        "--pivot_lang",
        "",
        "--device",
        "cpu",
        "--max_new_tokens",
        "8",
    ]
    augment_text.main(args)
    df = pd.read_csv(csv, keep_default_na=False)
    assert df.columns[0] == "Unnamed: 0" and len(df) == 2  # index column survives, unnamed
    assert df.loc[1, "AugmentedText"] == "An existing paraphrase."
    first = df.loc[0, "AugmentedText"]
    assert "paraphrased 1 row(s), kept 1" in capsys.readouterr().out
    augment_text.main(args)
    assert pd.read_csv(csv, keep_default_na=False).loc[0, "AugmentedText"] == first
    assert "paraphrased 0 row(s)" in capsys.readouterr().out or first == data[0]["Sentences"]


def test_candidates_and_forced_bos_multilingual(tmp_path):
    import torch

    torch.manual_seed(0)
    tok = tiny_tokenizer(tmp_path / "m2m", extra=("eng_Latn", "fra_Latn"))
    cfg = M2M100Config(
        vocab_size=len(tok),
        **TINY_SEQ2SEQ,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=1,
    )
    model = M2M100ForConditionalGeneration(cfg)
    tr = augment_text.Translator(tok, model, "eng_Latn", "fra_Latn")
    out = tr.translate(["hello one", "two three four"], num_candidates=5, max_new_tokens=6)
    assert len(out) == 2 and all(len(c) == 5 for c in out)
    generated = model.generate(
        **tok(["hello"], return_tensors="pt"),
        forced_bos_token_id=tr._forced_bos(),
        max_new_tokens=3,
    )
    assert generated[0, 1].item() == tok.convert_tokens_to_ids("fra_Latn")
    with pytest.raises(ValueError, match="not a token"):
        augment_text.Translator(tok, model, "eng_Latn", "xx_Latn")._forced_bos()


def test_espeak_tts_names_files_like_the_authors(tmp_path):
    data = rows(2, (1, 3))
    csv = write_csv(tmp_path / "m.csv", data)
    out = tmp_path / "aug"
    augment_audio.main(["--csv", str(csv), "--out_dir", str(out), "--variants", "2", "--jobs", "2"])
    files = sorted(out.glob("*.wav"))
    assert 4 <= len(files) <= 8
    index = index_augmented_audio(out)
    assert set(index) == {r["FileName"] for r in data}
    info = sf.info(files[0])
    assert info.samplerate == 16000 and info.channels == 1 and info.frames > 1000
    stamp = {f: f.stat().st_mtime_ns for f in files}
    augment_audio.main(["--csv", str(csv), "--out_dir", str(out), "--variants", "2"])
    assert {f: f.stat().st_mtime_ns for f in sorted(out.glob("*.wav"))} == stamp


def test_yourtts_without_package_is_a_clear_error(tmp_path):
    pytest.importorskip("numpy")
    try:
        import TTS  # noqa: F401

        pytest.skip("Coqui TTS is installed")
    except ImportError:
        pass
    with pytest.raises(RuntimeError, match="pip install TTS"):
        augment_audio.YourTTSEngine()
