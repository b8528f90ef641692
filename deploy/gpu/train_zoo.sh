#!/usr/bin/env bash
# Train the zoo's GPU plan (accelir/training/plan.py: GPU_PLAN) on a lent GPU machine, side by
# side until one deadline, then time the networks there (benchmarks/restore_latency.py).
# Run from the repository root on the GPU machine, with the wheels the machine lacks in .whl/,
# the packed photographs in .devdata/photos (`accelir data pack`) and, to build the C decoder
# there (seamless decodes, as the CPU-trained cards use), Debian's libjpeg62-turbo and
# libjpeg62-turbo-dev packages in .devdeb/ (`apt-get download`):
#     deploy/gpu/train_zoo.sh OUT [MINUTES] [GRACE_MINUTES] [MODEL_ID_TO_TIME ...]
# OUT receives the weights, cards and logs as zoo.tgz.part.* (pieces of 15 MiB: the device tool
# returns at most 8 files of 16 MiB, and $OUT is emptied before the next call, so whatever does
# not come back is lost — a first run lost its 41 MB archive that way), packed before the
# latency run so that a late stop loses only timings, then latency.{json,md}.
# Rejoin with: cat zoo.tgz.part.* | tar xz
# What travels (tracked files + carried folders) must stay under 64 MiB: the zoo alone is 58.6 MB
# and the packed photographs 18.5 MB, so move the weights no job needs (e.g. MIMO-UNet-28/26,
# 19 MB) out of accelir/models/weights before the call and `git checkout` them after.
set -u
out=${1:?output folder}
minutes=${2:-6}
grace=${3:-1.5}
shift $(($# < 3 ? $# : 3))
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi -L || true

# The C extension (accelir/codec/_blockdecode.c) against the carried libjpeg-turbo; without it
# the codec falls back to simplejpeg and training sees standalone-block decodes.
if ls .devdeb/*.deb >/dev/null 2>&1; then
  for f in .devdeb/*.deb; do dpkg -x "$f" /tmp/jpeg; done
  lib=/tmp/jpeg/usr/lib/x86_64-linux-gnu
  suffix=$(python3 -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
  include=$(python3 -c "import sysconfig; print(sysconfig.get_paths()['include'])")
  ${CC:-cc} -O3 -shared -fPIC -I"$include" -I/tmp/jpeg/usr/include \
    -I/tmp/jpeg/usr/include/x86_64-linux-gnu accelir/codec/_blockdecode.c -L"$lib" -ljpeg \
    -Wl,-rpath,"$lib" -o "accelir/codec/_blockdecode$suffix" || echo "C decoder not built"
fi
python3 -c "import torch, numba, numpy, accelir.codec as c; print('torch', torch.__version__, \
'numba', numba.__version__, 'numpy', numpy.__version__, 'engines', c.ENGINES, 'seamless', c.SEAMLESS)"

python3 -m accelir.cli train zoo --plan gpu --parallel 16 --minutes "$minutes" \
  --grace-minutes "$grace" --data .devdata/photos --weights-dir "$out/weights" \
  --runs "$out/runs" --device "${DEVICE:-cuda}" \
  --note "training photographs packed for the machine with accelir data pack (longest side at most 2048 px; files over 500 kB re-encoded as JPEG q90)"
for f in "$out"/runs/*.log; do
  echo "== $f"
  tr '\r' '\n' < "$f" | grep -av '^\s*$' | grep -av '━' | tail -5
done
tar czf - --exclude='*.pt' -C "$out" weights runs | split -b 15M - "$out/zoo.tgz.part."
if (($#)); then  # the model ids to time, if any
  only=()
  for id in "$@"; do only+=(--only "$id"); done
  timeout 75 python3 benchmarks/restore_latency.py --weights-dir accelir/models/weights \
    --weights-dir "$out/weights" --seconds 45 "${only[@]}" --out "$out/latency.json"
fi
rm -rf "$out/weights" "$out/runs"
ls -la "$out"
