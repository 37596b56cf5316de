"""PyTorch's DistributedDataParallel on the data-parallel case of test/training/distributed.test.ts:
2 ranks (Gloo on 127.0.0.1), ResNet18-CBAM, batch 16 per rank, 5 steps of SGD (momentum 0.9) or
Adam, train mode (BatchNorm buffers broadcast from rank 0 before each forward, DDP's default).
Writes into OUT: ddp_init.pth (the weights both sides start from), ddp_x.f32 / ddp_y.i64 (the
steps' global batches: rank r takes rows 16r..16r+15), and ddp_<optimizer>_rank<r>.safetensors
(each rank's parameters and buffers after the steps).
usage: /usr/bin/python3 scripts/peer-ddp.py OUT PORT
Each rank computes with one thread (OMP_NUM_THREADS, else 1), as the torch-attn ranks do.
"""
import os, sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel as DDP

from peer_cases import CASES, randomize, raw, write_safetensors

WORLD, BATCH, STEPS = 2, 16, 5
OPTIMIZERS = {"sgd": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9), "adam": lambda p: torch.optim.Adam(p, lr=1e-3)}


def rank_main(rank, out, port):
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or 1))
    # PyTorch >= 2.4 serves the TCPStore with libuv by default; Debian's is built without it.
    os.environ.setdefault("USE_LIBUV", "0")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    build, _ = CASES["resnet18_cbam"]
    x = torch.from_numpy(__import__("numpy").fromfile(os.path.join(out, "ddp_x.f32"), dtype="<f4")).reshape(STEPS, WORLD * BATCH, 3, 32, 32)
    y = torch.from_numpy(__import__("numpy").fromfile(os.path.join(out, "ddp_y.i64"), dtype="<i8")).reshape(STEPS, WORLD * BATCH)
    for name, make in OPTIMIZERS.items():
        model = build()
        model.load_state_dict(torch.load(os.path.join(out, "ddp_init.pth")))
        model.train()
        ddp = DDP(model)
        opt = make(ddp.parameters())
        for step in range(STEPS):
            opt.zero_grad(set_to_none=True)
            rows = slice(rank * BATCH, (rank + 1) * BATCH)
            loss = torch.nn.functional.cross_entropy(ddp(x[step, rows]), y[step, rows])
            loss.backward()
            opt.step()
        write_safetensors(model.state_dict(), os.path.join(out, f"ddp_{name}_rank{rank}.safetensors"))
    dist.destroy_process_group()


def main():
    out, port = sys.argv[1], int(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    build, _ = CASES["resnet18_cbam"]
    torch.save(randomize(build(), seed=7).state_dict(), os.path.join(out, "ddp_init.pth"))
    g = torch.Generator().manual_seed(2026)
    raw(torch.randn(STEPS, WORLD * BATCH, 3, 32, 32, generator=g), os.path.join(out, "ddp_x.f32"))
    torch.randint(0, 10, (STEPS, WORLD * BATCH), generator=g).numpy().astype("<i8").tofile(os.path.join(out, "ddp_y.i64"))
    mp.spawn(rank_main, args=(out, port), nprocs=WORLD, join=True)
    print("wrote", out)


if __name__ == "__main__":
    main()
