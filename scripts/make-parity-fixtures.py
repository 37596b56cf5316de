#!/usr/bin/python3
"""Parity fixtures: PyTorch peer models with random weights and non-trivial BatchNorm
statistics, their state dicts, an input batch, and eval- and train-mode logits.

torch-attn's tests load each state dict strictly into the matching torch-attn model and compare
logits. Run with Debian's PyTorch (apt-get install -y python3-torch python3-torchvision):

    /usr/bin/python3 scripts/make-parity-fixtures.py [out_dir]

Writes into out_dir (default test/fixtures/parity):
  <case>.pth                      torch.save(model.state_dict())
  <case>.safetensors              the same state dict as safetensors, for the cases in SAFETENSORS
  <case>.input.f32, .eval.f32, .train.f32   raw little-endian float32
  tv_resnet18.pth, tv_resnet50.pth          torchvision ImageNet-layout ResNets, random weights
  tv_vgg16_bn.keys.json                     torchvision vgg16_bn's state-dict names and shapes
  index.json                      shapes and the torch-attn model spec of each case
The state dicts are hundreds of MB in all, so they are generated (by the test suite's global
setup, or CI), never committed.
"""
import json, os, sys

import torch

from peer_cases import CASES, LAYOUTS, models, randomize, raw, write_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN_SEED = 123  # torch.manual_seed before the train-mode forward (dropout masks)
SAFETENSORS = {"cbamcnn", "se_resnet18"}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "test", "fixtures", "parity")
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    index = {}
    for i, (name, (build, spec)) in enumerate(CASES.items()):
        model = randomize(build(), seed=i)
        x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(100 + i))
        model.eval()
        with torch.no_grad():
            eval_logits = model(x)
        model.train()
        torch.manual_seed(TRAIN_SEED)
        with torch.no_grad():
            train_logits = model(x)
        # The train-mode pass updated running statistics: save the weights it started from.
        state = randomize(build(), seed=i).state_dict()
        torch.save(state, os.path.join(out, f"{name}.pth"))
        if name in SAFETENSORS:
            write_safetensors(state, os.path.join(out, f"{name}.safetensors"))
        raw(x, os.path.join(out, f"{name}.input.f32"))
        raw(eval_logits, os.path.join(out, f"{name}.eval.f32"))
        raw(train_logits, os.path.join(out, f"{name}.train.f32"))
        index[name] = {"spec": spec, "inputShape": list(x.shape), "logitsShape": list(eval_logits.shape),
                       "trainSeed": TRAIN_SEED, "safetensors": name in SAFETENSORS, "layout": LAYOUTS.get(name, "torch-attn"),
                       "torch": torch.__version__}
        print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters", flush=True)
    for depth in (18, 50):
        torch.manual_seed(depth)
        torch.save(getattr(models, f"resnet{depth}")().state_dict(), os.path.join(out, f"tv_resnet{depth}.pth"))
    vgg = models.vgg16_bn()
    with open(os.path.join(out, "tv_vgg16_bn.keys.json"), "w") as f:
        json.dump({k: list(v.shape) for k, v in vgg.state_dict().items()}, f)
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)


if __name__ == "__main__":
    main()
