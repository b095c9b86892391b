import numpy as np
import pytest
import torch

from models.batch import Batch
from models.vocab import text_to_ctc_ids
from tests.fixtures import make_dataset_dir, write_npy, write_wav
from training.data import (
    LengthBucketSampler,
    MMERDataset,
    build_loader,
    collate,
    index_augmented_audio,
    load_embedding,
    loader_settings,
    padding_fraction,
    set_epoch,
)
from training.manifest import DataError


@pytest.fixture
def d(tmp_path):
    return make_dataset_dir(tmp_path / "set with spaces")


def test_embedding_shapes_and_errors(tmp_path):
    assert load_embedding(write_npy(tmp_path / "a.npy", 4, 8), 8).shape == (4, 8)
    assert load_embedding(write_npy(tmp_path / "b.npy", 4, 8, batch_axis=False), 8).shape == (4, 8)
    with pytest.raises(DataError, match="width 8, expected 768"):
        load_embedding(tmp_path / "a.npy", 768)
    np.save(tmp_path / "r.npy", np.zeros((2, 3, 4, 8), np.float32))
    with pytest.raises(DataError, match=r"shape \(2, 3, 4, 8\)"):
        load_embedding(tmp_path / "r.npy", 8)
    np.save(tmp_path / "n.npy", np.full((1, 3, 8), np.inf, np.float32))
    with pytest.raises(DataError, match="NaN/Inf"):
        load_embedding(tmp_path / "n.npy", 8)
    with pytest.raises(DataError, match="not found"):
        load_embedding(tmp_path / "none.npy", 8)
    with pytest.raises(DataError, match="tokens for a 2-character"):
        load_embedding(write_npy(tmp_path / "long.npy", 40, 8), 8, sentence="Hi")


def test_augmented_index_uses_part_from_last_ses(d):
    index = index_augmented_audio(d["aug"])
    name = d["rows"][0]["FileName"]
    assert len(index[name]) == 2 and len(index) == len(d["rows"])


def test_training_batch_contract(d):
    ds = MMERDataset(
        d["csv"],
        str(d["wav"]) + "/",
        d["emb"],
        text_dim=8,
        training=True,
        aug_text_dir=d["emb_aug"],
        aug_audio_dir=d["aug"],
        max_audio_samples=20000,
    )
    batch = collate([ds[i] for i in range(3)], pad_quantum=4000)
    assert isinstance(batch, Batch) and batch.augmented is not None
    v = batch.view
    assert v.audio.dtype == torch.float32 and v.audio.shape[1] % 4000 == 0
    assert v.audio_lengths.dtype == torch.int64 and int(v.audio_lengths.max()) <= 20000
    assert v.audio.shape[1] - int(v.audio_lengths.max()) < 4000
    for i in range(3):
        n = int(v.audio_lengths[i])
        assert abs(float(v.audio[i, :n].mean())) < 1e-3 and not v.audio[i, n:].any()
        assert int(v.text_mask[i].sum()) == ds[i]["text"].shape[0]
        ids = text_to_ctc_ids(ds.rows.loc[i, "text"])
        assert batch.ctc_targets[i, : len(ids)].tolist() == ids
        assert (batch.ctc_targets[i, len(ids) :] == -100).all()
    assert v.text.shape[2] == 8 and v.text_mask.dtype == torch.bool
    assert batch.labels.dtype == torch.int64


def test_eval_is_deterministic_first_samples_and_train_is_seeded(d):
    ev = MMERDataset(d["csv"], d["wav"], d["emb"], text_dim=8, max_audio_samples=4000)
    assert "aug_audio" not in ev[1] and len(ev[1]["audio"]) == 4000
    tr = MMERDataset(
        d["csv"], d["wav"], d["emb"], text_dim=8, training=True, max_audio_samples=4000
    )
    a = tr[3]["aug_audio"]
    np.testing.assert_array_equal(a, tr[3]["aug_audio"])
    tr.set_epoch(1)
    assert not np.array_equal(a, tr[3]["aug_audio"])


def test_fallback_notices(d, capsys):
    MMERDataset(d["csv"], d["wav"], d["emb"], text_dim=8, training=True)
    out = capsys.readouterr().out
    assert "no augmented audio" in out and "no augmented text" in out and "converted on load" in out


@pytest.mark.parametrize(
    "problem", ["missing_wav", "empty_wav", "bad_npy_width", "missing_npy", "nan_wav"]
)
def test_bad_items_error_or_skip(d, problem):
    name = d["rows"][2]["FileName"]
    wav, npy = d["wav"] / f"{name}.wav", d["emb"] / f"{name}.npy"
    if problem == "missing_wav":
        wav.unlink()
    elif problem == "empty_wav":
        wav.write_bytes(b"")
    elif problem == "bad_npy_width":
        write_npy(npy, 3, 5)
    elif problem == "missing_npy":
        npy.unlink()
    elif problem == "nan_wav":
        import soundfile as sf

        sf.write(wav, np.full(800, np.nan, np.float32), 16000, subtype="FLOAT")
    if problem != "nan_wav":  # NaN is only seen when decoding: at load time under "error"
        with pytest.raises(DataError, match=name):
            MMERDataset(d["csv"], d["wav"], d["emb"], text_dim=8)
    ds = MMERDataset(d["csv"], d["wav"], d["emb"], text_dim=8, on_bad_input="skip")
    assert len(ds) == len(d["rows"]) - 1 and ds.skipped[0][0] == name
    assert name not in ds.names


def test_sampler_buckets_reproducible_and_resumable():
    lengths = list(np.random.default_rng(0).integers(1000, 100000, 103))
    s = LengthBucketSampler(lengths, 8, seed=3)
    first = list(s)
    assert sorted(i for b in first for i in b) == list(range(103))
    assert list(LengthBucketSampler(lengths, 8, seed=3)) == first
    s.set_epoch(1)
    assert list(s) != first
    rand = LengthBucketSampler(lengths, 8, seed=3, bucket=False)
    assert padding_fraction(first, lengths) < 0.5 * padding_fraction(list(rand), lengths)
    # resume after 5 batches of epoch 2
    s.set_epoch(2)
    it = iter(s)
    done = [next(it) for _ in range(5)]
    state = s.state_dict()
    r = LengthBucketSampler(lengths, 8, seed=3)
    r.load_state_dict(state)
    full = LengthBucketSampler(lengths, 8, seed=3)
    full.set_epoch(2)
    assert done + list(r) == list(full)


def test_sampler_ranks_disjoint_equal():
    lengths = list(range(1, 51))  # 50 items, batch 4 -> 13 batches, 3 ranks -> 5 each
    shares = [list(LengthBucketSampler(lengths, 4, num_replicas=3, rank=r)) for r in range(3)]
    assert {len(s) for s in shares} == {5} and len(
        LengthBucketSampler(lengths, 4, num_replicas=3)
    ) == 5
    flat = [tuple(b) for s in shares for b in s]
    assert len(set(flat)) == 13  # 15 slots, 2 repeated batches pad the split
    assert {i for b in flat for i in b} == set(range(50))


def test_build_loader_and_cache(d):
    ds = MMERDataset(
        d["csv"],
        d["wav"],
        d["emb"],
        text_dim=8,
        training=True,
        cache_audio=True,
        aug_audio_dir=d["aug"],
    )
    loader = build_loader(ds, batch_size=2, seed=1)
    set_epoch(loader, 0)
    names = [n for b in loader for n in b.names]
    assert sorted(names) == sorted(ds.names) and len(ds._cache) > len(ds)  # originals + variants
    set_epoch(loader, 0)
    assert [n for b in loader for n in b.names] == names


def test_paths_with_spaces_and_stereo_44k(tmp_path):
    d = make_dataset_dir(tmp_path / "my data")
    ds = MMERDataset(d["csv"], d["wav"], d["emb"], text_dim=8)
    assert abs(len(ds[0]["audio"]) - ds.lengths[0]) <= 1
    write_wav(d["wav"] / f"{d['rows'][0]['FileName']}.wav", 0.2)


def _augmented_epochs(d, num_workers: int, epochs=(0, 1)) -> list[list[np.ndarray]]:
    # no augmented wavs: the signal-level fallback draws from the (seed, epoch, index) RNG
    ds = MMERDataset(d["csv"], d["wav"], d["emb"], text_dim=8, training=True, seed=3)
    loader = build_loader(ds, batch_size=2, seed=1, num_workers=num_workers)
    out = []
    for epoch in epochs:
        set_epoch(loader, epoch)
        out.append([b.augmented.audio.numpy().copy() for b in loader])
    return out


def test_persistent_workers_draw_each_epochs_augmentation_like_the_main_process(d):
    # persistent workers keep the dataset copy they started with: set_epoch in the parent
    # does not reach them, so the sampler hands them the epoch with each index
    workers = _augmented_epochs(d, num_workers=2)
    inline = _augmented_epochs(d, num_workers=0)
    assert len(workers[0]) == len(inline[0]) > 0
    for w, i in zip(workers, inline, strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(w, i, strict=True))
    assert not all(
        a.shape == b.shape and np.array_equal(a, b)
        for a, b in zip(workers[0], workers[1], strict=True)
    )


def test_loader_settings_feed_a_gpu_and_leave_cpu_runs_as_they_were():
    assert loader_settings(torch.device("cpu"), -1) == {
        "num_workers": 0, "pin_memory": False, "prefetch_factor": None,
    }  # fmt: skip
    gpu = loader_settings(torch.device("cuda", 0), -1)
    assert 1 <= gpu["num_workers"] <= 8 and gpu["pin_memory"] and gpu["prefetch_factor"] == 4
    assert loader_settings(torch.device("cuda", 0), 3)["num_workers"] == 3
