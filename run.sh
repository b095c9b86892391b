#!/bin/sh
# Train MMER leave-one-session-out on IEMOCAP: `sh run.sh [extra train.py flags]`.
# Edit the variables below (or override them from the environment: EPOCHS=3 sh run.sh).
# Extra arguments go to train.py unchanged, e.g. `sh run.sh --sessions 1 --epochs 3`.
# Several GPUs on one node: `NPROC=4 sh run.sh` (torchrun). See README for clusters.
# Relative paths (the defaults below included) are taken from the directory you run it in;
# the published flags (--csv_path, --data_path_audio, ...) override the variables.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)

CONFIG=${CONFIG:-$HERE/configs/mmer.yaml}                    # model/data/train settings
CSV=${CSV:-data/iemocap.csv}                                 # FileName, Sentences, Label, text, AugmentedText
AUDIO=${AUDIO:-data/iemocap}                                 # <FileName>.wav, 16 kHz mono
ROBERTA=${ROBERTA:-data/roberta}                             # <FileName>.npy token embeddings
AUDIO_AUG=${AUDIO_AUG:-data/iemocap_augmented}               # <voice>_<FileName>.wav (optional)
ROBERTA_AUG=${ROBERTA_AUG:-data/roberta_augmented}           # paraphrase embeddings (optional)
SAVE_PATH=${SAVE_PATH:-exp/mmer}                             # outputs; re-running resumes
LAMBDA=${LAMBDA:-0.1}                                        # weight of CTC + SCL + ACL
EPOCHS=${EPOCHS:-100}                                        # paper: 100
BATCH_SIZE=${BATCH_SIZE:-2}                                  # paper: 2
ACCUM=${ACCUM:-4}                                            # gradient accumulation (paper: 4)
LR=${LR:-5e-5}                                               # AdamW learning rate (paper: 5e-5)
SEED=${SEED:-0}
PYTHON=${PYTHON:-python}                                     # e.g. .venv/bin/python
NPROC=${NPROC:-1}                                            # processes (GPUs) per node

# train.py checks every path after the flags below have applied (the user's win), and
# says what is missing and how to prepare it.
# The fixed flags first, the user's extra arguments last (argparse: the last one wins).
set -- \
  --config "$CONFIG" \
  --csv_path "$CSV" \
  --data_path_audio "$AUDIO" \
  --data_path_roberta "$ROBERTA" \
  --data_path_audio_augmented "$AUDIO_AUG" \
  --data_path_roberta_augmented "$ROBERTA_AUG" \
  --save_path "$SAVE_PATH" \
  --lambda "$LAMBDA" \
  --epochs "$EPOCHS" \
  --batch_size "$BATCH_SIZE" \
  --accum_iter "$ACCUM" \
  --lr "$LR" \
  --seed "$SEED" \
  "$@"
if [ "$NPROC" -gt 1 ]; then
  exec "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node "$NPROC" "$HERE/train.py" "$@"
fi
exec "$PYTHON" "$HERE/train.py" "$@"
