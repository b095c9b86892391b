"""A setting has one name: its config key is its flag (`--text_dir` sets data.text_dir), and
the published pipeline's spellings are aliases of that flag."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import infer
import train
from training.experiment import SECTIONS, load_experiment
from training.flags import FLAGS

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "mmer.yaml"


def settings(*argv: str):
    return load_experiment(CONFIG, train.overrides_from_args(train.build_parser().parse_args(argv)))


@pytest.mark.parametrize(
    ("published", "key"),
    [
        ("--csv_path", "data.csv_path"),
        ("--data_path_audio", "data.audio_dir"),
        ("--data_path_roberta", "data.text_dir"),
        ("--data_path_audio_augmented", "data.augmented_audio_dir"),
        ("--data_path_roberta_augmented", "data.augmented_text_dir"),
    ],
)
def test_published_path_flags_and_config_key_flags_set_the_same_key(published, key):
    section, _, name = key.partition(".")
    for flag in (published, f"--{name}"):
        assert getattr(getattr(settings(flag, "d/x"), section), name) == "d/x"


def test_published_numeric_flags_keep_working():
    exp = settings("--lambda", "0.2", "--epochs", "3", "--batch_size", "4", "--accum_iter", "2",
                   "--lr", "1e-4", "--seed", "7")  # fmt: skip
    assert exp.model.lambda_aux == 0.2
    assert (exp.train.epochs, exp.train.batch_size, exp.train.accum_iter) == (3, 4, 2)
    assert (exp.train.lr, exp.train.seed) == (1e-4, 7)
    assert settings("--lambda_aux", "0.3").model.lambda_aux == 0.3


def test_set_wins_over_a_flag_and_flags_are_typed_by_the_config():
    assert settings("--lr", "1e-4", "--set", "train.lr=2e-4").train.lr == 2e-4
    with pytest.raises(SystemExit):  # argparse's usage message, not a config error later
        train.build_parser().parse_args(["--epochs", "three"])


def test_every_flag_names_a_config_key():
    for flag in FLAGS:
        names = {f.name for f in dataclasses.fields(SECTIONS[flag.section])}
        assert flag.name in names, flag.key


def test_infer_evaluate_takes_the_same_spellings():
    base = ["evaluate", "--session", "1", "--csv_path", "m.csv", "--checkpoint_path", "c"]
    for audio, text in (
        ("--audio_dir", "--text_dir"),
        ("--data_path_audio", "--data_path_roberta"),
    ):
        args = infer.build_parser().parse_args([*base, audio, "a", text, "t"])
        assert (args.audio_dir, args.text_dir) == ("a", "t")


def test_set_takes_a_float_in_exponent_notation():
    assert settings("--set", "train.lr=3e-5").train.lr == 3e-5
    assert settings("--set", "data.text_dir=1e-4").data.text_dir == "1e-4"  # a str stays one


def test_a_set_value_that_is_not_yaml_is_a_config_error(tmp_path, capsys):
    assert (
        train.main(["--set", "model.audio_encoder_overrides={a: [", "--save_path", str(tmp_path)])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: --set model.audio_encoder_overrides: ") and "Traceback" not in err
