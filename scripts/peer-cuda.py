#!/usr/bin/env python3
"""PyTorch's side of scripts/bench-cuda.ts: ResNet18-CBAM (torchvision's ResNet18 with the CIFAR
stem, CBAM after each stage: torch-attn's ResNetCBAM) trained with Adam on CUDA, eager fp32,
the same batch; prints {"pytorch": version, "train_img_per_s": ...} as JSON.

    python3 scripts/peer-cuda.py --batch 256 --steps 30
"""
import argparse, json, time

import torch
import torch.nn as nn
import torchvision

ap = argparse.ArgumentParser()
ap.add_argument("--batch", type=int, default=256)
ap.add_argument("--steps", type=int, default=30)
args = ap.parse_args()


class CBAM(nn.Module):
    def __init__(self, c, ratio=16, k=7):
        super().__init__()
        hidden = max(c // ratio, 1)
        self.mlp = nn.Sequential(nn.Conv2d(c, hidden, 1, bias=False), nn.ReLU(), nn.Conv2d(hidden, c, 1, bias=False))
        self.spatial = nn.Conv2d(2, 1, k, padding=k // 2, bias=False)

    def forward(self, x):
        x = x * torch.sigmoid(self.mlp(torch.nn.functional.adaptive_avg_pool2d(x, 1)) + self.mlp(torch.nn.functional.adaptive_max_pool2d(x, 1)))
        s = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.spatial(s))


class ResNetCBAM(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.backbone = torchvision.models.resnet18(num_classes=classes)
        self.backbone.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.backbone.maxpool = nn.Identity()
        self.cbam = nn.ModuleList([CBAM(c) for c in (64, 128, 256, 512)])

    def forward(self, x):
        b = self.backbone
        x = b.relu(b.bn1(b.conv1(x)))
        for layer, cbam in zip((b.layer1, b.layer2, b.layer3, b.layer4), self.cbam):
            x = cbam(layer(x))
        return b.fc(torch.flatten(b.avgpool(x), 1))


torch.manual_seed(0)
device = torch.device("cuda")
model = ResNetCBAM().to(device).train()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.randn(args.batch, 3, 32, 32, device=device)
y = (torch.arange(args.batch, device=device) * 7) % 10


def step():
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()  # synchronises, as torch-attn's trainStep does


for _ in range(5):
    step()
torch.cuda.synchronize()
start = time.perf_counter()
for _ in range(args.steps):
    step()
seconds = time.perf_counter() - start
print(json.dumps({"pytorch": torch.__version__, "gpu": torch.cuda.get_device_name(0), "train_img_per_s": round(args.batch * args.steps / seconds, 1)}))
