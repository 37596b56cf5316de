#!/usr/bin/env python3
"""A LibTorch 2.6 defect seen on Debian 13, with PyTorch alone: the backward pass of small
convolutions through oneDNN returns non-finite gradients now and then when two intra-op threads
are used. Prints, per setting, how many of N seeded runs gave a non-finite gradient.

    python3 scripts/repro-libtorch26-conv.py        (Debian 13: python3-torch 2.6.0+debian)
"""
import torch
import torch.nn as nn


def bad_runs(make, shape, n=40):
    bad = 0
    for seed in range(n):
        torch.manual_seed(seed)
        conv = make()
        x = torch.randn(*shape, requires_grad=True)
        conv(x).sum().backward()
        bad += not (torch.isfinite(x.grad).all() and torch.isfinite(conv.weight.grad).all())
    return bad


print("torch", torch.__version__)
for threads, mkldnn in [(2, True), (2, False), (1, True)]:
    torch.set_num_threads(threads)
    torch.backends.mkldnn.enabled = mkldnn
    for k in (3, 7):
        n = bad_runs(lambda: nn.Conv2d(2, 1, k, padding=k // 2, bias=False), (4, 2, 16, 16))
        print(f"threads={threads} mkldnn={mkldnn} conv 2->1 k{k}: {n}/40 runs with non-finite gradients")
