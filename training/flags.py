"""Command-line flags for config settings, from one table.

A setting has one name, its config key: `text_dir` in the `data` section of the YAML. Its flag
is `--text_dir`, its `run.sh` variable `TEXT_DIR`. The published pipeline's spellings
(`--data_path_roberta`, `--lambda`, ...) are aliases of the same flag. A setting without a flag
of its own is set with `--set data.text_dir=...`.
"""

from __future__ import annotations

import argparse
import typing
from dataclasses import dataclass
from typing import Any

import yaml

from models.config import MODALITIES, ConfigError
from training.corpus import CORPORA
from training.experiment import SECTIONS, SELECTIONS
from utils.precision import PRECISIONS


@dataclass(frozen=True)
class Flag:
    key: str  # "section.name" in the experiment config
    aliases: tuple[str, ...] = ()  # the published script's spellings
    help: str | None = None
    choices: tuple | None = None

    @property
    def section(self) -> str:
        return self.key.partition(".")[0]

    @property
    def name(self) -> str:
        return self.key.partition(".")[2]


FLAGS = (
    Flag("data.corpus", help="corpus and its protocol", choices=tuple(sorted(CORPORA))),
    Flag("data.csv_path", help="manifest CSV (FileName, Sentences, Label, text, AugmentedText)"),
    Flag("data.audio_dir", ("--data_path_audio",), "<FileName>.wav"),
    Flag("data.text_dir", ("--data_path_roberta",), "<FileName>.npy token embeddings"),
    Flag("data.augmented_audio_dir", ("--data_path_audio_augmented",), "<voice>_<FileName>.wav"),
    Flag("data.augmented_text_dir", ("--data_path_roberta_augmented",), "paraphrase embeddings"),
    Flag("data.on_bad_input", choices=("error", "skip")),
    Flag("model.lambda_aux", ("--lambda", "--lambda_value"), "weight of the auxiliary losses"),
    Flag("model.modalities", help="ablation: one modality only", choices=MODALITIES),
    Flag("train.epochs"),
    Flag("train.batch_size", help="per process"),
    Flag("train.accum_iter", ("--accum_grad",), "gradient accumulation"),
    Flag("train.lr", ("--learning_rate",), "AdamW learning rate"),
    Flag("train.seed"),
    Flag("train.sessions", help="test sessions to run (default 1 2 3 4 5)"),
    Flag("train.selection", help="model selection", choices=SELECTIONS),
    Flag("train.precision", choices=PRECISIONS),
    Flag("train.device", help="auto, cpu, cuda, cuda:1, ..."),
    Flag("train.num_workers"),
    Flag("train.save_every_steps", help="also save resumable state every N steps"),
)
BY_KEY = {f.key: f for f in FLAGS}
# the paper's ablations: a switch that turns a loss off
ABLATIONS = {"no_ctc": "model.use_ctc", "no_scl": "model.use_scl", "no_acl": "model.use_acl"}


def add_flag(parser: argparse.ArgumentParser, key: str, **kwargs: Any) -> None:
    """Add the flag of setting `key` (its value lands in `args.<name>`, None when not given);
    `kwargs` are argparse's (required=True, default=...)."""
    flag = BY_KEY[key]
    hint = typing.get_type_hints(SECTIONS[flag.section])[flag.name]
    if hint is list:  # the folds: session numbers
        kwargs = {"nargs": "+", "type": int, **kwargs}
    else:
        kwargs = {"type": _scalar_type(hint), **kwargs}
    parser.add_argument(
        f"--{flag.name}",
        *flag.aliases,
        dest=flag.name,
        help=f"{flag.help} [{flag.key}]" if flag.help else f"[{flag.key}]",
        choices=flag.choices,
        **kwargs,
    )


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """Every flag of the table, the ablation switches and `--set`."""
    for flag in FLAGS:
        add_flag(parser, flag.key)
    for switch, key in ABLATIONS.items():
        parser.add_argument(
            f"--{switch}", action="store_true", help=f"ablation: {key} false (drop that loss)"
        )
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="any config value, e.g. --set model.hidden_size=256 (a YAML value); "
                        "applied after the flags above")  # fmt: skip


def overrides_from_args(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """{section: {key: value}} from the flags given (then `--set`, which wins)."""
    out: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    for flag in FLAGS:
        value = getattr(args, flag.name)
        if value is not None:
            out[flag.section][flag.name] = value
    for switch, key in ABLATIONS.items():
        if getattr(args, switch):
            section, _, name = key.partition(".")
            out[section][name] = False
    for item in args.set:
        target, sep, value = item.partition("=")
        section, dot, key = target.partition(".")
        if not sep or not dot or section not in out:
            raise ConfigError(
                f"--set {item!r}: expected SECTION.KEY=VALUE with SECTION in {'/'.join(out)}"
            )
        out[section][key] = _yaml_value(value, section, key)
    return out


def _yaml_value(text: str, section: str, key: str) -> Any:
    """A --set value as YAML, except that a float setting also takes `1e-4` (YAML 1.1, which
    PyYAML reads, has a float only with a dot: `1.0e-4`)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {section}.{key}: {text!r} is not a YAML value ({err})") from None
    hint = typing.get_type_hints(SECTIONS[section]).get(key)
    if isinstance(value, str) and float in _members(hint):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def _members(hint: Any) -> list:
    """The types a hint allows, None left out: `str | None` -> [str]; `float` -> [float]."""
    return [a for a in typing.get_args(hint) if a is not type(None)] or [hint]


def _scalar_type(hint: Any) -> type:
    return _members(hint)[0]
