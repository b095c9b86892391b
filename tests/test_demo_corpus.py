import hashlib
import re

import numpy as np
import pandas as pd
import pytest

from data_prep import augment_audio, espeak, prepare_iemocap
from data_prep.augment_audio import EspeakEngine
from data_prep.demo import make_corpus as make_demo_corpus
from data_prep.espeak import Espeak, Prosody, Request, UnknownVoice
from tests.fixtures import rows, write_csv


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def test_demo_corpus_is_iemocap_shaped_balanced_and_deterministic(tmp_path, monkeypatch):
    root = tmp_path / "a" / "IEMOCAP_full_release"
    args = ["--out", str(root), "--utterances_per_speaker", "8", "--seed", "1"]
    make_demo_corpus.main(args)
    assert (root / "Session5" / "dialog" / "EmoEvaluation" / "Ses05M_script02_2.txt").is_file()
    assert (
        b"\r\n"
        in (root / "Session1" / "dialog" / "transcriptions" / "Ses01F_script01_1.txt").read_bytes()
    )
    csv = tmp_path / "m.csv"
    prepare_iemocap.main(
        ["--corpus", str(root), "--out_csv", str(csv), "--out_wav_dir", str(tmp_path / "wav")]
    )
    df = pd.read_csv(csv)
    assert len(df) == 80 and {"exc", "hap"} <= set(df["Label"])
    speaker = df["FileName"].str[:5] + df["FileName"].str.split("_").str[-1].str[0]
    counts = pd.crosstab(speaker, df["Label"].replace({"exc": "hap"}))
    assert (counts.values == 2).all()  # 8 per speaker, two per class
    other = tmp_path / "b" / "IEMOCAP_full_release"
    # in two worker processes, which speak other utterances before each of theirs: every
    # utterance starts from a freshly loaded library
    monkeypatch.setattr(espeak, "MIN_PER_WORKER", 8)
    make_demo_corpus.main([*args[:1], str(other), *args[2:], "--jobs", "2"])
    assert _digest(root) == _digest(other)


def _digest_of(engine: Espeak, voice: str) -> str:
    # words that the accents pronounce differently (en-us and en-us-nyc agree on many)
    text = "I can't dance in the car park, but the water is hot."
    return hashlib.sha256(engine.synthesize(Request(text, voice)).tobytes()).hexdigest()


def test_every_espeak_voice_the_demo_and_augmentation_name_is_a_distinct_voice():
    # The espeak-ng program fell back silently where it did not know a voice spec ("en-gb+f3"
    # sounded like "en-gb+m1"): a corpus would then reuse one voice across dialogs and sessions.
    engine = Espeak()
    demo = sorted({u.voice.name for u in make_demo_corpus.plan_corpus(4, seed=0)})
    assert len(demo) == 40  # one per dialog and speaker: 5 sessions x 4 dialogs x 2
    augment = EspeakEngine().voices()
    for voices in (demo, augment):
        digests = {_digest_of(engine, v): v for v in voices}
        assert len(digests) == len(voices), sorted(set(voices) - set(digests.values()))


def test_the_same_request_gives_the_same_samples_whatever_was_spoken_before():
    # libespeak-ng keeps state between utterances (pitch-flutter phase, a clock-seeded noise
    # generator); data_prep/espeak.py starts each utterance from a freshly loaded library
    engine = Espeak()
    first = _digest_of(engine, "en-us+f3")
    engine.synthesize(Request("Something else first, and rather longer.", "en+klatt"))
    assert _digest_of(engine, "en-us+f3") == first


@pytest.mark.parametrize("voice", ["en-gb+f1", "en-us+nosuchvariant", "xx-nowhere"])
def test_a_voice_the_library_does_not_know_is_an_error_naming_it(voice):
    engine = Espeak()
    with pytest.raises(UnknownVoice, match=re.escape(repr(voice))):
        engine.synthesize(Request("Hello.", voice))


def test_two_variants_of_one_voice_sound_different():
    engine = Espeak()
    a = engine.synthesize(Request("Hello there, how are you?", "en-us+f1"))
    b = engine.synthesize(Request("Hello there, how are you?", "en-us+f4"))
    assert len(a) > 10000 and len(b) > 10000
    assert len(a) != len(b) or not np.array_equal(a, b)


def test_prosody_reaches_the_library():
    engine = Espeak()
    slow = engine.synthesize(Request("We will meet tomorrow morning.", "en", Prosody(rate=100)))
    fast = engine.synthesize(Request("We will meet tomorrow morning.", "en", Prosody(rate=300)))
    quiet = engine.synthesize(Request("We will meet tomorrow morning.", "en", Prosody(volume=40)))
    loud = engine.synthesize(Request("We will meet tomorrow morning.", "en", Prosody(volume=160)))
    assert len(slow) > 1.8 * len(fast)
    assert np.abs(loud).mean() > 2 * np.abs(quiet).mean()


def _break_the_synthesizer(monkeypatch):
    import espeakng_loader

    monkeypatch.setattr(espeakng_loader, "get_library_path", lambda: "/nonexistent/libespeak-ng.so")


def test_demo_corpus_without_the_synthesizer_stops_and_says_what_to_install(
    tmp_path, monkeypatch, capsys
):
    _break_the_synthesizer(monkeypatch)
    root = tmp_path / "IEMOCAP_full_release"
    assert make_demo_corpus.main(["--out", str(root), "--utterances_per_speaker", "4"]) == 2
    err = capsys.readouterr().err
    assert "libespeak-ng" in err and "pip install espeakng-loader==0.2.4" in err
    assert not root.exists()  # nothing written, no substitute speech


def test_augment_audio_without_the_synthesizer_stops_and_says_what_to_install(
    tmp_path, monkeypatch, capsys
):
    _break_the_synthesizer(monkeypatch)
    csv = write_csv(tmp_path / "m.csv", rows(2, (1,)))
    assert augment_audio.main(["--csv", str(csv), "--out_dir", str(tmp_path / "aug")]) == 2
    assert "pip install espeakng-loader==0.2.4" in capsys.readouterr().err
