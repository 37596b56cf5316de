"""A stand-in for torchvision's ImageNet ResNet18 file, for tests that must not download: a
randomly initialised torchvision resnet18 saved exactly as the real file is (a plain state dict,
torch.save), under the real file's name in a TORCH_HOME, with an input batch and torchvision's
logits for it.

    /usr/bin/python3 scripts/make-imagenet-fixture.py TORCH_HOME

Writes TORCH_HOME/hub/checkpoints/resnet18-f37072fd.pth, TORCH_HOME/input.f32 ([2, 3, 224, 224])
and TORCH_HOME/logits.f32 ([2, 1000]), float32 little-endian.
"""
import os
import sys

import torch
from torchvision import models


def main():
    home = sys.argv[1]
    os.makedirs(os.path.join(home, "hub", "checkpoints"), exist_ok=True)
    torch.manual_seed(0)
    model = models.resnet18()
    # Non-trivial BatchNorm statistics, as trained weights have.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    model.eval()
    torch.save(model.state_dict(), os.path.join(home, "hub", "checkpoints", "resnet18-f37072fd.pth"))
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(x)
    x.numpy().astype("<f4").tofile(os.path.join(home, "input.f32"))
    logits.numpy().astype("<f4").tofile(os.path.join(home, "logits.f32"))


if __name__ == "__main__":
    main()
