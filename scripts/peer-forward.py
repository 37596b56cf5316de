#!/usr/bin/python3
"""The PyTorch side of scripts/bench-forward.ts, like for like: a freshly built peer
ResNet18-CBAM (../shared/peer/peer_models.py) in eval mode, timed as bench.py times (2 warm-up
calls, then the mean of N). bench.py's own eval figure comes after 7 training steps, which change
BatchNorm statistics and with them the speed, so it is not the same workload as a fresh model.
usage: /usr/bin/python3 scripts/peer-forward.py PEER_DIR THREADS REPS   -> one JSON line
"""
import json, sys, time

import torch

sys.path.insert(0, sys.argv[1])
from peer_models import PeerResNetCBAM  # noqa: E402

threads, reps = int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
m = PeerResNetCBAM(18, 10).eval()


def timeit(fn, n, warm=2):
    for _ in range(warm):
        fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


with torch.no_grad():
    x = torch.randn(64, 3, 32, 32)
    b64 = timeit(lambda: m(x), reps)
    b1 = timeit(lambda: m(x[:1]), 20, 3)
print(json.dumps({"eval_b64_ms": round(b64 * 1000, 2), "eval_img_per_s": round(64 / b64, 1), "eval_b1_ms": round(b1 * 1000, 2)}))
