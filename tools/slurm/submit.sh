#!/bin/bash
# Submit a sharded study and its merge: tools/slurm/submit.sh DATASET PRESET OUT SHARDS
# e.g. tools/slurm/submit.sh cifar10 paper results/cifar10-paper 15
set -euo pipefail
DATASET=${1:?usage: submit.sh DATASET PRESET OUT SHARDS}
PRESET=${2:?usage: submit.sh DATASET PRESET OUT SHARDS}
OUT=${3:?usage: submit.sh DATASET PRESET OUT SHARDS}
SHARDS=${4:?usage: submit.sh DATASET PRESET OUT SHARDS}
HERE=$(cd "$(dirname "$0")" && pwd)
ARRAY=$(${SBATCH:-sbatch} --parsable --array=1-"$SHARDS" "$HERE/study.sbatch" "$DATASET" "$PRESET" "$OUT")
${SBATCH:-sbatch} --dependency=afterok:"${ARRAY%%;*}" "$HERE/merge.sbatch" "$OUT"
echo "submitted array job $ARRAY ($SHARDS shards) and its merge; results in $OUT"
