#!/usr/bin/env bash
# Retraining, step by step: the same commands locally (`make retrain`) and in the scheduled workflow
# (.github/workflows/retrain.yml runs the steps one at a time, so the data is pushed even when the gate
# refuses the model).
#
#   scripts/retrain.sh              every step: remote pull train commit push gate
#   scripts/retrain.sh STEP ...     only these steps, in the order given
#
# Optional environment (CI passes repository secrets):
#   DVC_REMOTE_URL       a DVC remote (s3://bucket/path, gs://bucket/path, /mnt/dvc ...) used instead of
#                        the repository's default remote; its credentials come the usual way
#                        (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS)
#   MLFLOW_TRACKING_URI  an MLflow tracking server used instead of sqlite:///mlflow.db (MLFLOW_TRACKING_USERNAME
#                        and MLFLOW_TRACKING_PASSWORD are read by MLflow itself)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/kedro ]; then
    export PATH="$PWD/.venv/bin:$PATH"
fi
export KEDRO_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 GX_ANALYTICS_ENABLED=False RAY_USAGE_STATS_ENABLED=0

# Points DVC at $DVC_REMOTE_URL, in a file git ignores. (kedro-mlflow reads $MLFLOW_TRACKING_URI itself:
# conf/base/mlflow.yml.)
step_remote() {
    if [ -n "${DVC_REMOTE_URL:-}" ]; then
        dvc remote add --local --force retrain "$DVC_REMOTE_URL"
        dvc remote default --local retrain
        echo "retrain: DVC remote -> $DVC_REMOTE_URL"
    fi
    if [ -n "${MLFLOW_TRACKING_URI:-}" ]; then
        echo "retrain: MLflow tracking server -> $MLFLOW_TRACKING_URI"
    fi
}

# The data of the last push: raw clips, manifest, features (kept up to date incrementally), models.
# Nothing pushed yet (a first run, an empty remote) is not an error.
step_pull() {
    dvc pull --allow-missing
}

# The named run of the retraining; the sample corpus first when data/01_raw holds no clip (as `make train`).
step_train() {
    if [ -z "$(find data/01_raw -type f ! -name .gitkeep -print -quit 2>/dev/null)" ]; then
        kedro run --pipeline=sample_data
    fi
    kedro run --config kedro.yml
}

# Records what the run read and wrote in dvc.lock and the DVC cache: the new data version.
step_commit() {
    dvc commit --force
}

step_push() {
    dvc push
}

# Fails (exit 1) with the gate's reason when the new model did not become the champion.
step_gate() {
    python scripts/promotion_gate.py data/08_reporting/promotion.json
}

steps=("$@")
if [ ${#steps[@]} -eq 0 ]; then
    steps=(remote pull train commit push gate)
fi
for step in "${steps[@]}"; do
    case "$step" in
        remote | pull | train | commit | push | gate) echo "retrain: $step"; "step_$step" ;;
        *) echo "retrain: unknown step '$step' (steps: remote pull train commit push gate)" >&2; exit 2 ;;
    esac
done
