#!/bin/sh
# Train MMER leave-one-session-out on IEMOCAP: `sh run.sh [extra train.py flags]`.
# The settings are those of CONFIG (configs/mmer.yaml: the paper's). Each variable below, when
# set, overrides the config key of the same name in lower case, as its flag does:
# `TEXT_DIR=data/roberta sh run.sh` = `sh run.sh --text_dir data/roberta` (data.text_dir).
# Extra arguments go to train.py last, so they win, e.g. `sh run.sh --sessions 1 --epochs 3`.
# Several GPUs on one node: `NPROC=4 sh run.sh` (torchrun). See README for clusters.
# Relative paths are taken from the directory you run it in.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)

CONFIG=${CONFIG:-$HERE/configs/mmer.yaml}  # model / data / train settings
PYTHON=${PYTHON:-python}                   # e.g. .venv/bin/python
NPROC=${NPROC:-1}                          # processes (GPUs) per node
# Passed on when set (README, "Settings"): the data paths, the run directory (SAVE_PATH,
# default exp/mmer; re-running resumes), and the headline hyper-parameters.
SETTINGS="CSV_PATH AUDIO_DIR TEXT_DIR AUGMENTED_AUDIO_DIR AUGMENTED_TEXT_DIR SAVE_PATH
  LAMBDA_AUX EPOCHS BATCH_SIZE ACCUM_ITER LR SEED"

# Earlier names of these variables: refused rather than silently ignored.
for renamed in CSV:CSV_PATH AUDIO:AUDIO_DIR ROBERTA:TEXT_DIR AUDIO_AUG:AUGMENTED_AUDIO_DIR \
  ROBERTA_AUG:AUGMENTED_TEXT_DIR LAMBDA:LAMBDA_AUX ACCUM:ACCUM_ITER; do
  eval "value=\${${renamed%%:*}:-}"
  if [ -n "$value" ]; then
    echo "run.sh: ${renamed%%:*} is now ${renamed#*:} (the config key of that name)" >&2
    exit 2
  fi
done

# train.py's arguments: the config, the variables that are set, then the user's own
# (rotated to the end: argparse lets the last occurrence win).
n=$#
set -- "$@" --config "$CONFIG"
for var in $SETTINGS; do
  eval "value=\${$var:-}"
  if [ -n "$value" ]; then
    set -- "$@" "--$(printf %s "$var" | tr '[:upper:]' '[:lower:]')" "$value"
  fi
done
while [ "$n" -gt 0 ]; do
  set -- "$@" "$1"
  shift
  n=$((n - 1))
done
if [ "$NPROC" -gt 1 ]; then
  exec "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node "$NPROC" "$HERE/train.py" "$@"
fi
exec "$PYTHON" "$HERE/train.py" "$@"
