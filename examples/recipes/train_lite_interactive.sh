#!/bin/sh
# Reproduce the shipped interactive model, src/medsam/weights/data/lite_interactive.pth
# (docs/models/lite_interactive.md): prepare the shared data, train, keep the trained parts.
#
#   sh examples/recipes/train_lite_interactive.sh [RUN_FOLDER]     (default: runs/lite_interactive)
#
# Run from the repository root with ../shared beside it. About an hour on a 2-core CPU
# (the slice embeddings, computed once, are a quarter of it); under torchrun the same
# config trains on GPUs (medsam train's --nproc options, see docs/training.md).
set -eu
RUN=${1:-runs/lite_interactive}
medsam prepare examples/datasets/interactive_training.json -o "$RUN/prepared" -j 2
medsam train --config examples/recipes/lite_interactive.json --set data="$RUN/prepared" --set out="$RUN/run" --overwrite
medsam weights pack "$RUN/run/best.pth" -o "$RUN/lite_interactive.pth" --overwrite
echo "compare its sha256 with the lite_interactive entry of src/medsam/weights/registry.py"
