"""The config hash names a run directory's configuration: a run resumes only under the same
hash, so an update must not change the hash of any run made before it, and a new setting left
at its default must not either."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from models.config import MMERConfig
from training import experiment
from training.experiment import Experiment, TrainConfig, load_experiment

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = {"model": {"audio_padding": "published"}}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (PUBLISHED, "e0d8714b9cbb"),  # every run made before audio_padding existed
        ({}, "45f98046c04b"),
        ({"train": {"lr_schedule": "cosine"}}, "ecf338650ff1"),
        ({"data": {"corpus": "msp_podcast"}, "train": {"sessions": ["test"]}}, "ccacd69dd360"),
    ],
)
def test_the_paper_configuration_keeps_the_hash_its_run_directories_hold(overrides, expected):
    # the values config.yaml of such runs starts with ("# config hash ...")
    assert load_experiment(ROOT / "configs" / "mmer.yaml", overrides).hash() == expected


@dataclass
class GrownTrain(TrainConfig):
    new_knob: float = 0.0


@dataclass
class GrownModel(MMERConfig):
    new_loss_weights: dict = field(default_factory=dict)


def grown(exp: Experiment) -> Experiment:
    """`exp` under a release whose model and train sections each gained a setting."""
    return Experiment(
        model=GrownModel(**dataclasses.asdict(exp.model)),
        data=exp.data,
        train=GrownTrain(**dataclasses.asdict(exp.train)),
    )


def test_a_setting_added_later_changes_no_hash_while_left_at_its_default():
    for overrides in ({}, PUBLISHED, {"train": {"lr_schedule": "linear", "warmup_steps": 3}}):
        exp = load_experiment(ROOT / "configs" / "mmer.yaml", overrides)
        new = grown(exp)
        assert new.hash() == exp.hash()
        new.train.new_knob = 0.5  # used: a new configuration
        assert new.hash() != exp.hash()
        new.train.new_knob = 0.0
        new.model.new_loss_weights = {"ctc": 2.0}
        assert new.hash() != exp.hash()


def test_paths_devices_and_kernels_never_change_the_hash():
    exp = load_experiment(ROOT / "configs" / "mmer.yaml")
    moved = load_experiment(
        ROOT / "configs" / "mmer.yaml",
        {
            "model": {"attention_implementation": "eager", "fast_dropout": False},
            "data": {"text_dir": "elsewhere", "augmented_audio_dir": None},
            "train": {"device": "cpu", "num_workers": 3, "save_every_steps": 5, "sessions": [2]},
        },
    )
    assert moved.hash() == exp.hash()


def test_every_always_hashed_key_is_a_setting():
    # removing (or renaming) one of these changes the hash of every existing run directory
    for section, cls in experiment.SECTIONS.items():
        names = {f.name for f in dataclasses.fields(cls)}
        assert experiment._FIRST_HASHED[section] <= names, section
        assert experiment._NOT_HASHED[section] <= names, section
