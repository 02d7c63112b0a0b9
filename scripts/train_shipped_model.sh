#!/usr/bin/env bash
# Reproduces the shipped checkpoint esmscale/pretrained/synthetic-pr-4x from data the package
# generates itself (see docs/model_card.md). About 40 minutes on 2 CPU cores.
set -euo pipefail
out="${1:-runs}"
mkdir -p "$out"
esmscale synth "$out/synthetic-obs.nc" --ny 64 --nx 64 --days 3650 --seed 0
esmscale synth "$out/held-out.nc" --ny 64 --nx 64 --days 64 --seed 1000
esmscale train "$out/synthetic-obs.nc" --output "$out/synthetic-pr-4x" --name synthetic-pr-4x \
    --steps 10000 --batch-size 16 --patch-size 32 --lr 1e-3 --channels 32 32 64 64 \
    --factor 4 --seed 0 --checkpoint-every 500 --quiet
esmscale calibrate "$out/synthetic-pr-4x/model" --obs "$out/synthetic-obs.nc" \
    --held-out "$out/held-out.nc" --members 8 --max-fields 64 \
    --output "${2:-esmscale/pretrained/synthetic-pr-4x}"
