#!/usr/bin/env bash
# Evaluate a checkpoint on one IEMOCAP session (the published system's interface, unchanged;
# with --corpus msp_podcast, SESSION is a partition: test or dev):
#   bash infer.sh SESSION CONFIG CSV_PATH AUDIO_DIR TEXT_DIR CHECKPOINT [options]
# CHECKPOINT: a run's fold<k>/best directory, or one of the authors' released .pt files
# (their checkpoint 1 was trained on sessions 2-5: evaluate session 1).
# Options go to `infer.py evaluate`: --predictions FILE, --json FILE, --batch_size N,
# --device DEV, --precision {fp32,bf16,fp16,auto}, --on_bad_input {error,skip}.
# Relative paths are taken from the directory you run it in; the metrics JSON goes beside
# --predictions, else into that directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "$#" -lt 6 ]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
session=$1 config=$2 csv_path=$3 audio_dir=$4 text_dir=$5 checkpoint_path=$6
shift 6
exec "${PYTHON:-python}" "$here/infer.py" evaluate \
  --session "$session" \
  --config "$config" \
  --csv_path "$csv_path" \
  --audio_dir "$audio_dir" \
  --text_dir "$text_dir" \
  --checkpoint_path "$checkpoint_path" \
  "$@"
