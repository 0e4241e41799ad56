#!/usr/bin/env bash
# Slurm job array: each array task runs one shard of a qossim sweep; a final
# `qossim merge` combines them (see docs/cluster.md).
#
#   sbatch --array=1-8 scripts/slurm-sweep.sh scenarios/compare-loss.toml shards
#   # when all tasks are done:
#   qossim merge shards/* --out results/compare-loss
#
#SBATCH --job-name=qossim-sweep
#SBATCH --cpus-per-task=2
#SBATCH --time=01:00:00
set -euo pipefail
SCENARIO=${1:?usage: slurm-sweep.sh SCENARIO SHARD_DIR}
SHARDS_DIR=${2:?usage: slurm-sweep.sh SCENARIO SHARD_DIR}
QOSSIM=${QOSSIM:-qossim}
K=${SLURM_ARRAY_TASK_ID:?run under sbatch --array=1-N (SLURM_ARRAY_TASK_ID unset)}
N=${SLURM_ARRAY_TASK_COUNT:?run under sbatch --array=1-N (SLURM_ARRAY_TASK_COUNT unset)}
mkdir -p "$SHARDS_DIR"
# --resume: a requeued task keeps the runs it already finished
exec "$QOSSIM" sweep "$SCENARIO" --shard "$K/$N" --out "$SHARDS_DIR/$K" \
    --jobs "${SLURM_CPUS_PER_TASK:-0}" --resume --quiet
