"""The warmup length has one meaning: steps or a fraction of all steps, never both."""

from __future__ import annotations

import pytest

import train
from models.config import ConfigError
from training.experiment import TrainConfig
from training.schedule import scheduled_lr, warmup_length

from .conftest import cli


def test_warmup_is_given_in_steps_or_as_a_fraction_of_all_steps():
    assert warmup_length(TrainConfig(), 100) == 0
    assert warmup_length(TrainConfig(warmup_steps=7), 100) == 7
    assert warmup_length(TrainConfig(warmup_fraction=0.1), 250) == 25
    t = TrainConfig(lr=1e-3, warmup_fraction=0.1)
    assert [scheduled_lr(t, k, 30) for k in range(4)] == pytest.approx(
        [1e-3 / 3, 2e-3 / 3, 1e-3, 1e-3]
    )


def test_both_warmup_spellings_at_once_are_refused():
    with pytest.raises(ConfigError, match="train.warmup_steps and train.warmup_fraction"):
        TrainConfig(warmup_steps=10, warmup_fraction=0.1)


def test_both_warmup_spellings_on_the_command_line_are_one_clear_error(corpus, tmp_path, capsys):
    both = ("--set", "train.warmup_steps=3", "--set", "train.warmup_fraction=0.1")
    assert train.main(cli(corpus, tmp_path / "x", *both)) == 2
    err = capsys.readouterr().err
    assert "train.warmup_steps and train.warmup_fraction" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()
