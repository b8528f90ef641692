#!/usr/bin/env bash
# Train the zoo's GPU plan (accelir/training/plan.py: GPU_PLAN) on a lent GPU machine, side by
# side until one deadline, then time every network there (benchmarks/restore_latency.py).
# Run from the repository root on the GPU machine, with the wheels the machine lacks in .whl/
# and the packed photographs in .devdata/photos (`accelir data pack`):
#     deploy/gpu/train_zoo.sh OUT [MINUTES]
# OUT receives the weights, cards and logs as zoo.tgz.part.* (pieces of 15 MiB: the device tool
# returns at most 8 files of 16 MiB, and $OUT is emptied before the next call, so whatever does
# not come back is lost — a first run lost its 41 MB archive that way) and latency.{json,md}.
# Rejoin with: cat zoo.tgz.part.* | tar xz
set -u
out=${1:?output folder}
minutes=${2:-6}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import torch, numba, numpy; print('torch', torch.__version__, 'numba', numba.__version__, 'numpy', numpy.__version__)"
python3 -m accelir.cli train zoo --plan gpu --parallel 16 --minutes "$minutes" --grace-minutes 2 \
  --data .devdata/photos --weights-dir "$out/weights" --runs "$out/runs" --device cuda \
  --note "training photographs packed for the machine with accelir data pack (longest side at most 2048 px; files over 500 kB re-encoded as JPEG q90)"
python3 benchmarks/restore_latency.py --weights-dir accelir/models/weights \
  --weights-dir "$out/weights" --seconds 40 --out "$out/latency.json"
for f in "$out"/runs/*.log; do
  echo "== $f"
  tr '\r' '\n' < "$f" | grep -av '^\s*$' | grep -av '━' | tail -4
done
tar czf - --exclude='*.pt' -C "$out" weights runs | split -b 15M - "$out/zoo.tgz.part."
rm -rf "$out/weights" "$out/runs"
ls -la "$out"
