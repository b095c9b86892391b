import numpy as np
import pytest
import soundfile as sf

from tests.fixtures import write_wav
from training.manifest import DataError
from utils import audio


def test_load_resamples_and_downmixes(tmp_path):
    wave = audio.load(write_wav(tmp_path / "a.wav", 1.0, 44100, 2))
    assert wave.dtype == np.float32 and wave.ndim == 1 and abs(len(wave) - 16000) <= 1
    info = audio.probe(tmp_path / "a.wav")
    assert info.needs_conversion and abs(info.samples_16k - 16000) <= 1


@pytest.mark.parametrize("kind", ["missing", "empty_file", "truncated", "not_audio", "zero_length"])
def test_bad_files_raise_clear_errors(tmp_path, kind):
    path = tmp_path / f"{kind}.wav"
    if kind == "empty_file":
        path.write_bytes(b"")
    elif kind == "truncated":
        write_wav(tmp_path / "ok.wav", 1.0)
        path.write_bytes((tmp_path / "ok.wav").read_bytes()[:30])
    elif kind == "not_audio":
        path.write_text("this is a text file, not RIFF")
    elif kind == "zero_length":
        sf.write(path, np.zeros(0, np.float32), 16000)
    with pytest.raises(DataError, match=str(path.name)):
        audio.load(path)


def test_nan_samples(tmp_path):
    wave = np.zeros(1600, np.float32)
    wave[10] = np.nan
    sf.write(tmp_path / "n.wav", wave, 16000, subtype="FLOAT")
    with pytest.raises(DataError, match="NaN or Inf"):
        audio.load(tmp_path / "n.wav")


def test_normalize_matches_feature_extractor_and_is_safe_on_silence():
    from transformers import Wav2Vec2FeatureExtractor

    x = np.random.default_rng(0).standard_normal(5000).astype(np.float32) * 0.1 + 0.02
    ref = Wav2Vec2FeatureExtractor(do_normalize=True)(x, sampling_rate=16000).input_values[0]
    np.testing.assert_allclose(audio.normalize(x), ref, atol=1e-5)
    silent = audio.normalize(np.zeros(1000, np.float32))
    assert np.isfinite(silent).all() and not silent.any()


def test_crop_and_augmentation():
    x = np.arange(100, dtype=np.float32)
    assert audio.crop(x, 30).tolist() == x[:30].tolist()
    r = audio.crop(x, 30, np.random.default_rng(1))
    assert len(r) == 30 and r[0] == x[int(r[0])]
    wave = np.sin(np.arange(16000) / 10).astype(np.float32)
    assert abs(len(audio.change_speed(wave, 1.1)) - 16000 / 1.1) < 2
    assert abs(len(audio.shift_pitch(wave, 2.0)) - 16000) < 300
    out = audio.random_augment(wave, np.random.default_rng(0))
    assert np.isfinite(out).all() and 0.8 * 16000 < len(out) < 1.2 * 16000
    np.testing.assert_array_equal(out, audio.random_augment(wave, np.random.default_rng(0)))
