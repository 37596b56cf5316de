#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU and a CUDA PyTorch: builds the addon against
# that PyTorch's LibTorch, runs the CUDA tests (test/cuda.test.ts, plus the tensor and runtime
# suites that check devices), measures ResNet18-CBAM training img/s on CUDA beside the same
# PyTorch, and load-tests `torch-attn serve --device cuda` batched against unbatched (issue 19's
# ratio where batch 1 leaves the device idle: short rounds, CIFAR-10 test JPEGs from SERVE_DATA,
# skipped without them). One command, well under 8 minutes; writes gpu-check.json into $OUT (or
# the checkout).
#
#   bash scripts/gpu-check.sh            # PYTHON=python3 by default
#   # the JPEGs on a machine without ../shared: copy the tarball into an ignored folder the
#   # device run carries (.gpu-data/), then SERVE_DATA=.gpu-data/test_10000.tar.gz
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
out=${OUT:-$PWD}
started=$(date +%s)
log() { echo "gpu-check [$(( $(date +%s) - started )) s]: $*"; }

torch_dir=$("$PYTHON" -c 'import torch, os; print(os.path.dirname(torch.__file__))')
"$PYTHON" -c 'import torch; assert torch.cuda.is_available(), "PyTorch sees no CUDA device"; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0))'

if [ ! -d node_modules ]; then log "npm ci"; npm ci --no-audit --no-fund --ignore-scripts >/dev/null; fi
log "building against $torch_dir"
TORCH_ATTN_LIBTORCH="$torch_dir" npm run build:native >/dev/null
node -e "const b=require('./build/Release/torch_attn.node'); const i=b.buildInfo(); console.log(JSON.stringify(i)); if(!i.cuda||!b.cudaIsAvailable()){console.error('gpu-check: the addon was not built with CUDA or sees no device');process.exit(1)} if(!/^[0-9]+[.][0-9]+$/.test(i.cudaVersion)){console.error('gpu-check: buildInfo() names no CUDA version');process.exit(1)}"

log "CUDA tests"
tests=0
npx vitest run test/cuda.test.ts test/tensor/tensor.test.ts test/runtime/runtime.test.ts --reporter=verbose 2>&1 | tee "$out/gpu-check-tests.log" | tail -25 || tests=$?
log "NCCL tests (skipped unless the build found nccl.h: buildInfo above)"
npx vitest run test/distributed/ddp.test.ts -t NCCL --reporter=verbose 2>&1 | tee "$out/gpu-check-nccl.log" | tail -8 || tests=$?

log "ResNet18-CBAM training on CUDA, torch-attn and PyTorch"
bench=$(npx tsx scripts/bench-cuda.ts --python "$PYTHON")
echo "$bench"
serve_data=${SERVE_DATA:-../shared/data/cifar10-jpg/test_10000.tar.gz}
log "serving on CUDA: batched against unbatched ($serve_data)"
serve='{"skipped": "no CIFAR-10 test JPEGs: set SERVE_DATA"}'
if [ -f "$serve_data" ]; then
  serve=$(npx tsx scripts/bench-serve.ts --device cuda --data "$serve_data" --duration 10 --baseline-duration 8 --rounds 2 --threads 4) || serve='{"failed": true}'
fi
echo "$serve"
echo "{\"tests_exit\": $tests, \"bench\": $bench, \"serve\": $serve, \"seconds\": $(( $(date +%s) - started ))}" > "$out/gpu-check.json"
log "wrote $out/gpu-check.json"
exit "$tests"
