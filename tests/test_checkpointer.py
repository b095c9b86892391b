"""The checkpointer: every registered object comes back, a new one needs no save/load code,
a state file of another configuration is refused, and a state.pt written before the
checkpointer existed still resumes."""

from __future__ import annotations

import pytest
import torch

from training.checkpointer import Checkpointer, TorchRNG
from training.experiment import load_experiment
from training.manifest import read_manifest
from training.trainer import FoldState, FoldTrainer
from utils.distributed import DistContext
from utils.errors import TrainingError

OLD_KEYS = {"model", "optimizer", "scaler", "fold", "torch_rng", "cuda_rng", "config_hash"}


def _stepped_objects(seed: int):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scaler = torch.amp.GradScaler("cpu", enabled=True, init_scale=2.0**seed)
    scaler.scale(model(torch.randn(4, 3)).sum()).backward()
    scaler.step(optimizer)
    scaler.update()
    return model, optimizer, scaler


def _register(ckpt: Checkpointer, model, optimizer, scaler, state: FoldState) -> None:
    for name, obj in (("model", model), ("optimizer", optimizer), ("scaler", scaler),
                      ("fold", state), ("torch_rng", TorchRNG())):  # fmt: skip
        ckpt.register(name, obj)


def test_every_registered_object_is_restored(tmp_path):
    model, optimizer, scaler = _stepped_objects(1)
    state = FoldState(epoch=3, batches_done=5, optimizer_steps=17, running={"loss": 2.5})
    saved = Checkpointer(tmp_path / "state.pt", "abc")
    _register(saved, model, optimizer, scaler, state)
    saved.save()
    expected_draw = torch.rand(4)

    # a fresh process: other weights, a fresh optimizer and scaler, zero counters, another RNG
    model2, optimizer2, scaler2 = _stepped_objects(2)
    state2 = FoldState()
    loaded = Checkpointer(tmp_path / "state.pt", "abc")
    _register(loaded, model2, optimizer2, scaler2, state2)
    assert loaded.load()
    assert torch.equal(model2.weight, model.weight) and torch.equal(model2.bias, model.bias)
    exp_avg = optimizer.state[model.weight]["exp_avg"]
    assert torch.equal(optimizer2.state[model2.weight]["exp_avg"], exp_avg)
    assert scaler2.get_scale() == scaler.get_scale() != 4.0
    assert state2 == state  # the very object that was registered, updated in place
    assert torch.equal(torch.rand(4), expected_draw)  # the RNG continues where it was saved


def test_a_newly_registered_object_is_saved_and_restored_by_name(tmp_path):
    class EMA:  # any object with state_dict / load_state_dict
        def __init__(self, value: float) -> None:
            self.value = value

        def state_dict(self) -> dict:
            return {"value": self.value}

        def load_state_dict(self, state: dict) -> None:
            self.value = state["value"]

    ckpt = Checkpointer(tmp_path / "state.pt", "abc")
    ckpt.register("fold", FoldState(epoch=1))
    ckpt.register("ema", EMA(0.25))
    ckpt.save()
    assert torch.load(tmp_path / "state.pt", weights_only=True)["ema"] == {"value": 0.25}
    again = Checkpointer(tmp_path / "state.pt", "abc")
    ema, state = EMA(0.0), FoldState()
    again.register("fold", state)
    again.register("ema", ema)
    assert again.load() and ema.value == 0.25 and state.epoch == 1
    with pytest.raises(ValueError, match="'ema' is taken"):
        again.register("ema", EMA(1.0))
    assert not Checkpointer(tmp_path / "none.pt", "abc").load()  # nothing saved yet


def test_a_state_file_of_another_configuration_is_refused(tmp_path):
    ckpt = Checkpointer(tmp_path / "state.pt", "abc")
    ckpt.register("fold", FoldState(epoch=4))
    ckpt.save()
    before = (tmp_path / "state.pt").read_bytes()
    other = Checkpointer(tmp_path / "state.pt", "def")
    state = FoldState()
    other.register("fold", state)
    with pytest.raises(TrainingError, match="belongs to a run with another configuration"):
        other.load()
    assert state.epoch == 0 and (tmp_path / "state.pt").read_bytes() == before


def _trainer(corpus, fold_dir) -> FoldTrainer:
    data = {"csv_path": str(corpus["csv"]), "audio_dir": str(corpus["wav"]),
            "text_dir": str(corpus["emb"]), "augmented_audio_dir": str(corpus["aug"]),
            "augmented_text_dir": str(corpus["emb_aug"])}  # fmt: skip
    exp = load_experiment(corpus["config"], {"data": data, "train": {"sessions": [1]}})
    manifest = read_manifest(corpus["csv"])
    cpu = torch.device("cpu")
    return FoldTrainer(exp, manifest, 1, fold_dir, DistContext(), cpu, fold_dir.parent / "tb")


def test_a_state_file_written_before_the_checkpointer_resumes_exactly(corpus, tmp_path):
    fold_dir = tmp_path / "fold1"
    fold_dir.mkdir()
    a = _trainer(corpus, fold_dir)
    a.end_epoch({"epoch": 1, "train": a.train_epoch()}, writer=None)
    # state.pt as FoldTrainer.save_state wrote it before the checkpointer
    payload = {
        "model": a.model.state_dict(),
        "optimizer": a.optimizer.state_dict(),
        "scaler": a.scaler.state_dict(),
        "fold": vars(a.state),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": [],
        "config_hash": a.exp.hash(),
    }
    torch.save(payload, fold_dir / "state.pt")

    b = _trainer(corpus, fold_dir)
    assert b.checkpointer.load()
    assert b.state == a.state
    b_losses = b.train_epoch()
    torch.set_rng_state(payload["torch_rng"])  # b's construction reseeded the global RNG
    a_losses = a.train_epoch()
    assert b_losses == a_losses
    b_weights = b.model.state_dict()
    for name, weight in a.model.state_dict().items():
        assert torch.equal(weight, b_weights[name]), name

    b.checkpoint()  # and the checkpointer writes the same keys
    assert set(torch.load(fold_dir / "state.pt", weights_only=True)) == OLD_KEYS
