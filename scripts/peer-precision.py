#!/usr/bin/python3
"""The PyTorch side of the mixed-precision tests: loads a state dict into a peer model and, under
torch.autocast("cpu", dtype=torch.bfloat16), writes (1) its eval-mode logits and (2) its
parameters after one SGD step on the given labels (train mode; the loss on float32 logits, as
torch-attn computes it).

    /usr/bin/python3 scripts/peer-precision.py JOB.json
JOB.json: {"case": "resnet18_cbam", "checkpoint": "...pth", "input": "...f32", "inputShape": [...],
           "labels": [...], "lr": 0.01, "channelsLast": false, "names": [...], "logits": "...f32", "params": "...f32"}
The state-dict entries `names` are written one after another, float32.
"""
import json, sys

import torch
import torch.nn.functional as F

from peer_cases import CASES, set_peer_threads, raw, read_raw

set_peer_threads()
job = json.load(open(sys.argv[1]))
build, _ = CASES[job["case"]]
model = build()
model.load_state_dict(torch.load(job["checkpoint"], weights_only=True), strict=True)
x = read_raw(job["input"], job["inputShape"])
if job.get("channelsLast"):
    model = model.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)

model.eval()
with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
    raw(model(x).float(), job["logits"])

model.train()
opt = torch.optim.SGD(model.parameters(), lr=job["lr"])
with torch.autocast("cpu", dtype=torch.bfloat16):
    logits = model(x)
loss = F.cross_entropy(logits.float(), torch.tensor(job["labels"], dtype=torch.int64))
loss.backward()
opt.step()
state = model.state_dict()
raw(torch.cat([state[name].detach().float().reshape(-1) for name in job["names"]]), job["params"])
print("ok", flush=True)
