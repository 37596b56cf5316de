#!/usr/bin/env python3
"""Defects of Debian 13's LibTorch 2.6 (its oneDNN 3.7.2), shown with PyTorch alone: the AVX-512
and AVX2 convolution kernels (1) return non-finite input gradients now and then for small channel
counts when two intra-op threads run them (AVX2: rarer, 1 of 40 here), and the AVX-512 ones (2)
give channels-last ResNet18-CBAM logits about 1e-2 away from float64's. With
ONEDNN_MAX_CPU_ISA=SSE41, which torch-attn sets on that build, neither happens.

    python3 scripts/repro-libtorch26-conv.py                         (Debian 13: python3-torch 2.6.0+debian)
    ONEDNN_MAX_CPU_ISA=AVX2 python3 scripts/repro-libtorch26-conv.py
    ONEDNN_MAX_CPU_ISA=SSE41 python3 scripts/repro-libtorch26-conv.py
The second part needs the peer models: TORCH_ATTN_PEER (default ../shared/peer).
"""
import os
import sys

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


print("torch", torch.__version__, "ONEDNN_MAX_CPU_ISA", os.environ.get("ONEDNN_MAX_CPU_ISA", "(unset)"))
for threads, mkldnn in [(2, True), (2, False), (1, True)]:
    torch.set_num_threads(threads)
    torch.backends.mkldnn.enabled = mkldnn
    for cin, cout, k in [(2, 1, 7), (4, 1, 3)]:
        n = bad_runs(lambda: nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), (4, cin, 16, 16))
        print(f"threads={threads} mkldnn={mkldnn} conv {cin}->{cout} k{k}: {n}/40 runs with non-finite gradients")
torch.backends.mkldnn.enabled = True
torch.set_num_threads(2)

peer = os.environ.get("TORCH_ATTN_PEER", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "peer"))
if os.path.exists(os.path.join(peer, "peer_models.py")):
    sys.path.insert(0, peer)
    from peer_models import PeerResNetCBAM

    torch.manual_seed(3)
    m = PeerResNetCBAM(18, 5).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = m.double()(x.double()).float()
        m = m.float()
        a = m(x)
        b = m.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    rel = lambda t: ((t - ref).abs().max() / ref.abs().max()).item()
    print(f"ResNet18-CBAM eval logits vs float64: contiguous {rel(a):.1e}, channels-last {rel(b):.1e}")
