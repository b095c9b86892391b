"""Dataset, collate and batch sampler: files on disk (DESIGN.md §2) -> `models.batch.Batch`.

    ds = MMERDataset("data/iemocap.csv", "data/iemocap", "data/roberta", training=True,
                     aug_text_dir="data/roberta_augmented", aug_audio_dir="data/iemocap_augmented")
    loader = build_loader(ds, batch_size=2, training=True)
    for epoch in range(epochs):
        set_epoch(loader, epoch)          # reseeds crops, augmentation draws and batch order
        for batch in loader: ...          # Batch(view=View(audio (B,S), ...), labels (B,), ...)

Randomness (training crop, augmented-audio variant, signal augmentation) comes from an RNG
seeded with (seed, epoch, index), so a run is reproducible and a resumed run sees the same data.
The loader's sampler hands each item its epoch with its index, so DataLoader workers (persistent
ones too, which keep the dataset copy they started with) draw what num_workers=0 draws.
Evaluation keeps the first `max_audio_samples` samples, as the reference code does.
"""

from __future__ import annotations

import functools
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from models.batch import Batch, View
from models.vocab import text_to_ctc_ids
from training.manifest import DataError, check_policy, format_skipped, read_manifest
from utils import audio as audio_io

MAX_AUDIO_SAMPLES = audio_io.MAX_AUDIO_SAMPLES
PAD_QUANTUM = 4000  # samples (0.25 s); see `collate`


def load_embedding(
    path: str | Path, dim: int | None = None, sentence: str | None = None
) -> np.ndarray:
    """Token embeddings from `<dir>/<FileName>.npy`: float32 (T, D).

    Accepts (1, T, D) and (T, D). Raises `DataError` for a missing/unreadable file, another
    rank, D != `dim`, T == 0, NaN/Inf, or a T too large for `sentence` (a tokenizer gives at
    most one token per UTF-8 byte, plus special tokens: more means the file belongs elsewhere).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"embedding {path}: file not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"embedding {path}: not a readable .npy file ({exc})") from None
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise DataError(f"embedding {path}: shape {arr.shape}, expected (1, T, D) or (T, D)")
    if dim is not None and arr.shape[1] != dim:
        raise DataError(f"embedding {path}: width {arr.shape[1]}, expected {dim} (text_dim)")
    if arr.shape[0] == 0:
        raise DataError(f"embedding {path}: zero tokens, expected T >= 1")
    if not np.issubdtype(arr.dtype, np.floating) or not np.isfinite(arr).all():
        raise DataError(
            f"embedding {path}: contains NaN/Inf or is not floating point ({arr.dtype})"
        )
    if sentence is not None and arr.shape[0] > len(sentence.encode("utf-8")) + 4:
        raise DataError(
            f"embedding {path}: {arr.shape[0]} tokens for a {len(sentence)}-character transcript; "
            "expected the embedding of this utterance's Sentences"
        )
    return np.ascontiguousarray(arr, dtype=np.float32)


def index_augmented_audio(
    aug_dir: str | Path | None, names: Iterable[str] | None = None
) -> dict[str, list[Path]]:
    """Map FileName -> sorted augmented wavs `<anything>_<FileName>.wav`.

    With `names` (the manifest's), the FileName is the longest `_`-separated suffix that is
    one of them (any corpus); without, the part from the last `Ses` (the authors' IEMOCAP
    names, e.g. `Ses01F_impro01_F_Ses02M_script01_1_M012.wav` -> `Ses02M_script01_1_M012`).
    """
    index: dict[str, list[Path]] = defaultdict(list)
    if aug_dir is None or not Path(aug_dir).is_dir():
        return {}
    known = set(names) if names is not None else None
    for entry in os.scandir(aug_dir):
        if not entry.name.lower().endswith(".wav"):
            continue
        stem = entry.name[:-4]
        if known is None:
            cut = stem.rfind("Ses")
            original = stem[cut:] if cut >= 0 else None
        else:
            cuts = [i + 1 for i, ch in enumerate(stem) if ch == "_"]
            original = next((stem[c:] for c in cuts if stem[c:] in known), None)
        if original:
            index[original].append(Path(entry.path))
    return {k: sorted(v) for k, v in index.items()}


class MMERDataset(Dataset):
    """Utterances of a manifest with their audio and token embeddings.

    Args:
        manifest: CSV path or a DataFrame from `training.manifest.read_manifest`.
        audio_dir: holds `<FileName>.wav` (any rate/channels; converted to 16 kHz mono).
        text_dir: holds `<FileName>.npy` token embeddings, (1, T, text_dim) or (T, text_dim).
        text_dim: expected embedding width (768 for roberta-base, 384 for MiniLM).
        training: random crops and an augmented view per item; evaluation crops deterministically.
        aug_text_dir / aug_audio_dir: augmented view sources (see module doc); missing ->
            original embeddings / signal-level augmentation of the original, with a notice.
        max_audio_samples: crop length in samples (<= 0: no crop).
        on_bad_input: "error" raises `DataError`; "skip" checks every item now and lists the
            bad ones in `self.skipped` as (FileName, reason), so batches never shrink later.
        cache_audio: keep decoded 16 kHz audio in memory (per worker process).
        augment: build the augmented view in training (False: original view only).
    """

    def __init__(
        self,
        manifest: str | Path | pd.DataFrame,
        audio_dir: str | Path,
        text_dir: str | Path,
        *,
        text_dim: int = 768,
        training: bool = False,
        aug_text_dir: str | Path | None = None,
        aug_audio_dir: str | Path | None = None,
        max_audio_samples: int = MAX_AUDIO_SAMPLES,
        seed: int = 0,
        on_bad_input: str = "error",
        cache_audio: bool = False,
        augment: bool = True,
        log: Any = print,
    ) -> None:
        check_policy(on_bad_input)
        self.skipped: list[tuple[str, str]] = []
        if isinstance(manifest, pd.DataFrame):
            rows = manifest.reset_index(drop=True)
        else:
            rows = read_manifest(manifest, on_bad_input=on_bad_input, skipped=self.skipped)
        self.audio_dir, self.text_dir = Path(audio_dir), Path(text_dir)
        self.aug_text_dir = Path(aug_text_dir) if aug_text_dir else None
        self.text_dim, self.training, self.augment = text_dim, training, augment
        self.max_audio_samples, self.seed, self.epoch = max_audio_samples, seed, 0
        self.on_bad_input = on_bad_input
        self._cache: dict[str, np.ndarray] | None = {} if cache_audio else None

        keep, lengths, converted = [], [], 0
        for i, row in enumerate(rows.itertuples(index=False)):
            try:
                info = audio_io.probe(self.audio_dir / f"{row.FileName}.wav")
                load_embedding(self.text_dir / f"{row.FileName}.npy", text_dim, row.Sentences)
                if on_bad_input == "skip":  # decode now so that no item fails mid-epoch
                    wave = audio_io.load(self.audio_dir / f"{row.FileName}.wav")
                    if self._cache is not None:
                        self._cache[row.FileName] = wave
            except DataError as exc:
                if on_bad_input == "error":
                    raise
                self.skipped.append((row.FileName, str(exc)))
                continue
            keep.append(i)
            converted += info.needs_conversion
            n = info.samples_16k
            lengths.append(min(n, max_audio_samples) if max_audio_samples > 0 else n)
        self.rows = rows.iloc[keep].reset_index(drop=True)
        if self.rows.empty:
            raise DataError(f"no usable utterances under {self.audio_dir} / {self.text_dir}")
        self.lengths: list[int] = lengths  # samples after crop, for the batch sampler
        self.names: list[str] = self.rows["FileName"].tolist()
        if converted:
            log(
                f"note: {converted} wav(s) are not 16 kHz mono; converted on load (soxr, channel mean)"
            )
        if self.skipped:
            log(format_skipped(self.skipped))

        self.aug_audio = (
            index_augmented_audio(aug_audio_dir, self.names) if training and augment else {}
        )
        if training and augment:
            if not self.aug_audio:
                log(
                    "note: no augmented audio found; the augmented view uses speed/pitch/noise "
                    "perturbation of the original audio"
                )
            if self.aug_text_dir is None or not self.aug_text_dir.is_dir():
                log("note: no augmented text embeddings; the augmented view reuses the original's")
                self.aug_text_dir = None

    def __len__(self) -> int:
        return len(self.rows)

    def set_epoch(self, epoch: int) -> None:
        """Reseed per-item randomness; call once per epoch (`set_epoch(loader, e)` does)."""
        self.epoch = int(epoch)

    def _rng(self, index: int, stream: int, epoch: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch, index, stream])

    def _audio(self, name: str, path: Path) -> np.ndarray:
        if self._cache is not None and name in self._cache:
            return self._cache[name]
        wave = audio_io.load(path)
        if self._cache is not None:
            self._cache[name] = wave
        return wave

    def _prepare_audio(self, wave: np.ndarray, index: int, stream: int, epoch: int) -> np.ndarray:
        rng = self._rng(index, stream, epoch) if self.training else None
        return audio_io.prepare(wave, self.max_audio_samples, rng)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        """One utterance: audio (S,) float32 normalised, text (T, D), label, ctc ids, name,
        and in training `aug_audio` / `aug_text` for the augmented view. `key` is an index
        (drawn for `self.epoch`) or (index, epoch), as the loader's sampler yields them."""
        index, epoch = key if isinstance(key, tuple) else (key, self.epoch)
        row = self.rows.iloc[index]
        name = row.FileName
        wave = self._audio(name, self.audio_dir / f"{name}.wav")
        item = {
            "name": name,
            "audio": self._prepare_audio(wave, index, 0, epoch),
            "text": load_embedding(self.text_dir / f"{name}.npy", self.text_dim),
            "label": int(row.label),
            "ctc": text_to_ctc_ids(row.text),
        }
        if self.training and self.augment:
            variants = self.aug_audio.get(name)
            if variants:
                pick = variants[int(self._rng(index, 1, epoch).integers(len(variants)))]
                aug_wave = self._audio(pick.name, pick)
            else:
                aug_wave = audio_io.random_augment(wave, self._rng(index, 1, epoch))
            item["aug_audio"] = self._prepare_audio(aug_wave, index, 2, epoch)
            aug_npy = self.aug_text_dir / f"{name}.npy" if self.aug_text_dir else None
            item["aug_text"] = (
                load_embedding(aug_npy, self.text_dim)
                if aug_npy is not None and aug_npy.is_file()
                else item["text"]
            )
        return item


def padded_width(lengths: Sequence[int], pad_quantum: int) -> int:
    """Samples a batch is padded to: its longest item rounded UP to a multiple of `pad_quantum`
    (on CPU oneDNN re-plans its convolutions for every new input length: see `collate`)."""
    quantum = max(1, pad_quantum)
    return int(math.ceil(max(int(n) for n in lengths) / quantum) * quantum)


def pad_view(audios: Sequence[np.ndarray], texts: Sequence[np.ndarray], pad_quantum: int) -> View:
    """Prepared audio (S_i,) and token embeddings (T_i, D) -> one zero-padded `View`."""
    lengths = [a.shape[0] for a in audios]
    width = padded_width(lengths, pad_quantum)
    audio = torch.zeros(len(audios), width, dtype=torch.float32)
    for i, a in enumerate(audios):
        audio[i, : a.shape[0]] = torch.from_numpy(a)
    t_max, dim = max(t.shape[0] for t in texts), texts[0].shape[1]
    text = torch.zeros(len(texts), t_max, dim, dtype=torch.float32)
    mask = torch.zeros(len(texts), t_max, dtype=torch.bool)
    for i, t in enumerate(texts):
        text[i, : t.shape[0]] = torch.from_numpy(t)
        mask[i, : t.shape[0]] = True
    return View(audio, torch.tensor(lengths, dtype=torch.int64), text, mask)


def collate(items: Sequence[dict[str, Any]], pad_quantum: int = PAD_QUANTUM) -> Batch:
    """Items of `MMERDataset` -> `Batch`.

    Audio is zero-padded to the longest item rounded UP to a multiple of `pad_quantum`
    samples: on CPU oneDNN re-plans its convolutions for every new input length, and exact
    lengths made an epoch ~10x slower. Text is zero-padded with `text_mask` marking real
    tokens; CTC targets are padded with -100.
    """
    view = pad_view([it["audio"] for it in items], [it["text"] for it in items], pad_quantum)
    ctc_len = max(1, max(len(it["ctc"]) for it in items))
    ctc = torch.full((len(items), ctc_len), -100, dtype=torch.int64)
    for i, it in enumerate(items):
        ctc[i, : len(it["ctc"])] = torch.tensor(it["ctc"], dtype=torch.int64)
    augmented = None
    if all("aug_audio" in it for it in items):
        augmented = pad_view(
            [it["aug_audio"] for it in items], [it["aug_text"] for it in items], pad_quantum
        )
    return Batch(
        view=view,
        labels=torch.tensor([it["label"] for it in items], dtype=torch.int64),
        ctc_targets=ctc,
        names=[it["name"] for it in items],
        augmented=augmented,
    )


class LengthBucketSampler(Sampler[list[int]]):
    """Batches of similar-length utterances, in a reproducible random order per epoch.

    Each epoch: shuffle, cut into pools of `pool_batches` batches, sort each pool by length,
    cut it into batches, shuffle the batches. `bucket=False` gives plain shuffled batching
    (the reference's). With `num_replicas` > 1 every rank gets `len(self)` batches, disjoint
    except that the batch list is padded by repetition to a multiple of `num_replicas`.
    `state_dict()`/`load_state_dict()` carry (epoch, batches consumed) so a resumed epoch
    skips what was already trained on. `tag_epoch`: batches are lists of (index, epoch), for
    a dataset that draws per epoch in worker processes (`MMERDataset.__getitem__`).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
        bucket: bool = True,
        pool_batches: int = 50,
        tag_epoch: bool = False,
    ) -> None:
        if batch_size < 1 or not 0 <= rank < num_replicas:
            raise ValueError(
                f"need batch_size >= 1 and 0 <= rank < num_replicas (got {batch_size}, {rank}, {num_replicas})"
            )
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.num_replicas, self.rank, self.drop_last = num_replicas, rank, drop_last
        self.bucket, self.pool_batches, self.tag_epoch = bucket, pool_batches, tag_epoch
        self.epoch, self.consumed = 0, 0

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.consumed = int(epoch), 0

    def _all_batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.lengths)) if self.shuffle else np.arange(len(self.lengths))
        if self.bucket:
            pool = self.batch_size * self.pool_batches
            chunks = [order[i : i + pool] for i in range(0, len(order), pool)]
            order = np.concatenate([c[np.argsort(self.lengths[c], kind="stable")] for c in chunks])
        batches = [
            order[i : i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)
        ]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle and self.bucket:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        if self.num_replicas > 1:
            per_rank = (
                len(batches) // self.num_replicas
                if self.drop_last
                else math.ceil(len(batches) / self.num_replicas)
            )
            total = per_rank * self.num_replicas
            batches = (batches * math.ceil(total / max(1, len(batches))))[:total]
            batches = batches[self.rank :: self.num_replicas]
        return batches

    def __len__(self) -> int:
        n = (
            len(self.lengths) // self.batch_size
            if self.drop_last
            else math.ceil(len(self.lengths) / self.batch_size)
        )
        if self.num_replicas > 1:
            n = n // self.num_replicas if self.drop_last else math.ceil(n / self.num_replicas)
        return n

    def __iter__(self) -> Iterator[list[int]] | Iterator[list[tuple[int, int]]]:
        batches = self._all_batches()
        start = self.consumed
        for i in range(start, len(batches)):
            self.consumed = i + 1
            yield [(j, self.epoch) for j in batches[i]] if self.tag_epoch else batches[i]
        self.consumed = 0  # epoch finished: iterating again replays it (evaluation loaders)

    def state_dict(self, batches_consumed: int | None = None) -> dict[str, int]:
        """Resume point. With DataLoader workers the sampler runs ahead of training:
        pass the training loop's own count of finished batches as `batches_consumed`."""
        consumed = self.consumed if batches_consumed is None else batches_consumed
        return {"epoch": self.epoch, "batches_consumed": int(consumed), "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.consumed = int(state["epoch"]), int(state["batches_consumed"])
        self.seed = int(state.get("seed", self.seed))


def padding_fraction(
    batches: Sequence[Sequence[int]], lengths: Sequence[int], pad_quantum: int = 1
) -> float:
    """Share of audio samples in the padded batches that are padding (0 = none)."""
    total = real = 0
    for batch in batches:
        lens = [int(lengths[i]) for i in batch]
        total += padded_width(lens, pad_quantum) * len(lens)
        real += sum(lens)
    return 0.0 if total == 0 else 1.0 - real / total


def build_loader(
    dataset: MMERDataset,
    batch_size: int,
    *,
    training: bool | None = None,
    bucket: bool = True,
    seed: int = 0,
    num_workers: int = 0,
    pad_quantum: int = PAD_QUANTUM,
    num_replicas: int = 1,
    rank: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
    prefetch_factor: int | None = None,
) -> DataLoader:
    """DataLoader over `dataset` with a `LengthBucketSampler` (shuffled when training) and `collate`.

    `training` defaults to `dataset.training`. Call `set_epoch(loader, epoch)` each epoch.
    Training workers persist across epochs (the sampler tells them the epoch); `pin_memory` gives
    page-locked batches for asynchronous copies to a GPU.
    """
    training = dataset.training if training is None else training
    sampler = LengthBucketSampler(
        dataset.lengths,
        batch_size,
        shuffle=training,
        seed=seed,
        num_replicas=num_replicas,
        rank=rank,
        drop_last=drop_last,
        bucket=bucket,
        tag_epoch=True,
    )
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=functools.partial(collate, pad_quantum=pad_quantum),
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0 and training,
        prefetch_factor=prefetch_factor if num_workers > 0 else None,
    )


def loader_settings(device: torch.device, num_workers: int, processes_per_node: int = 1) -> dict:
    """DataLoader settings that keep `device` fed. `num_workers` -1 (auto): on a GPU, up to 8
    decoding processes per training process (as many as the node's CPUs allow), a prefetch of
    4 batches per worker and pinned batches; on the CPU, 0 workers (decoding in the training
    process, which leaves the cores to the model), as before."""
    on_gpu = device.type == "cuda"
    if num_workers < 0:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        num_workers = min(8, max(1, (cpus or 1) // max(1, processes_per_node) - 1)) if on_gpu else 0
    return {
        "num_workers": num_workers,
        "pin_memory": on_gpu,
        "prefetch_factor": 4 if on_gpu and num_workers > 0 else None,
    }


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Reseed the sampler's batch order and the dataset's crops/augmentation for `epoch`."""
    loader.batch_sampler.set_epoch(epoch)
    loader.dataset.set_epoch(epoch)
