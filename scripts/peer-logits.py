#!/usr/bin/python3
"""Loads checkpoints that torch-attn wrote into the matching PyTorch peer models
(load_state_dict(strict=True)) and writes their eval-mode logits, for the round-trip tests.

    /usr/bin/python3 scripts/peer-logits.py JOBS.json
JOBS.json: [{"case": "resnet18_cbam", "checkpoint": "...pth|.safetensors (or a training checkpoint)", "input": "...f32",
             "inputShape": [4, 3, 32, 32], "output": "...f32"}, ...]
"""
import json, sys

import torch

from peer_cases import CASES, set_peer_threads, raw, read_raw, read_safetensors

set_peer_threads()
for job in json.load(open(sys.argv[1])):
    build, _ = CASES[job["case"]]
    model = build()
    path = job["checkpoint"]
    # weights_only=True: the safe loader (the default from PyTorch 2.6) must accept what torch-attn writes.
    state = read_safetensors(path) if path.endswith(".safetensors") else torch.load(path, weights_only=True)
    if "model_state_dict" in state:  # a torch-attn training checkpoint (last.pth / best.pth)
        state = state["model_state_dict"]
    model.load_state_dict(state, strict=True)
    model.eval()
    with torch.no_grad():
        raw(model(read_raw(job["input"], job["inputShape"])), job["output"])
    print(job["case"], "ok", flush=True)
