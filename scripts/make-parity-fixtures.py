#!/usr/bin/python3
"""Parity fixtures: PyTorch peer models with random weights and non-trivial BatchNorm
statistics, their state dicts (torch.save), an input batch, and eval- and train-mode logits.

torch-attn's tests load each state dict strictly into the matching torch-attn model and compare
logits. Run with Debian's PyTorch (apt-get install -y python3-torch python3-torchvision):

    /usr/bin/python3 scripts/make-parity-fixtures.py [out_dir]

Writes <out_dir>/<case>.pth, <case>.input.f32, <case>.eval.f32, <case>.train.f32 (raw float32,
little-endian) and index.json (shapes and the torch-attn model spec of each case). The state
dicts are tens of MB, so they are generated (by the test suite's global setup, or CI), not
committed.
"""
import json, math, os, sys

import torch
import torch.nn as nn
from torchvision import models

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "..", "..", "shared", "peer")
sys.path.insert(0, os.environ.get("TORCH_ATTN_PEER", PEER))
from peer_models import CBAM, PeerCBAMCNN, PeerNAMResNet, PeerResNetCBAM, randomize  # noqa: E402


class SE(nn.Module):
    """Squeeze-and-excitation, senet.pytorch layout: fc.0 / fc.2 Linear without bias."""

    def __init__(self, c, ratio=16):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(c, max(1, c // ratio), bias=False), nn.ReLU(),
                                nn.Linear(max(1, c // ratio), c, bias=False))

    def forward(self, x):
        return x * torch.sigmoid(self.fc(x.mean((2, 3)))).unsqueeze(-1).unsqueeze(-1)


def se_resnet(depth, num_classes):
    """CIFAR-stem torchvision ResNet with SE inside every block (after the last BN)."""
    m = getattr(models, f"resnet{depth}")(num_classes=num_classes)
    m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    for layer in [m.layer1, m.layer2, m.layer3, m.layer4]:
        for blk in layer:
            last_bn = blk.bn3 if hasattr(blk, "bn3") else blk.bn2
            blk.se = SE(last_bn.num_features)
            blk.forward = _block_forward(blk, blk.se)
    return m


def _block_forward(blk, attn):
    def fwd(x):
        identity = x
        out = blk.relu(blk.bn1(blk.conv1(x)))
        if hasattr(blk, "bn3"):
            out = blk.bn3(blk.conv3(blk.relu(blk.bn2(blk.conv2(out)))))
        else:
            out = blk.bn2(blk.conv2(out))
        if blk.downsample is not None:
            identity = blk.downsample(x)
        return blk.relu(attn(out) + identity)
    return fwd


class VGGCBAM(nn.Module):
    """torchvision VGG features, CBAM after each stage's max-pool, the CIFAR head."""

    def __init__(self, depth=16, num_classes=10):
        super().__init__()
        self.features = getattr(models, f"vgg{depth}_bn")().features
        for i, c in enumerate([64, 128, 256, 512, 512], 1):
            setattr(self, f"cbam_stage{i}", CBAM(c))
        self.classifier = nn.Sequential(nn.Linear(512, 512), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(512, 512), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(512, num_classes))

    def forward(self, x):
        stage = 1
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.MaxPool2d):
                x = getattr(self, f"cbam_stage{stage}")(x)
                stage += 1
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


CASES = {
    "resnet18_cbam": (lambda: PeerResNetCBAM(18, 10), {"arch": "resnet", "depth": 18, "numClasses": 10, "attention": {"kind": "cbam"}, "placement": "stage"}),
    "resnet50_cbam": (lambda: PeerResNetCBAM(50, 10), {"arch": "resnet", "depth": 50, "numClasses": 10, "attention": {"kind": "cbam"}, "placement": "stage"}),
    "resnet18_nam": (lambda: PeerNAMResNet(18, 10), {"arch": "resnet", "depth": 18, "numClasses": 10, "attention": {"kind": "nam"}, "placement": "block"}),
    "resnet50_nam": (lambda: PeerNAMResNet(50, 100), {"arch": "resnet", "depth": 50, "numClasses": 100, "attention": {"kind": "nam"}, "placement": "block"}),
    "cbamcnn": (lambda: PeerCBAMCNN(10), {"arch": "cbamcnn", "numClasses": 10}),
    "vgg16_bn_cbam": (lambda: VGGCBAM(16, 10), {"arch": "vgg", "depth": 16, "batchNorm": True, "numClasses": 10, "attention": {"kind": "cbam"}}),
    "se_resnet18": (lambda: se_resnet(18, 10), {"arch": "resnet", "depth": 18, "numClasses": 10, "attention": {"kind": "se"}, "placement": "block"}),
}

TRAIN_SEED = 123  # torch.manual_seed before the train-mode forward (dropout masks)


def raw(t, path):
    t.detach().contiguous().float().numpy().astype("<f4").tofile(path)


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
        # The train-mode pass updated running statistics: save the weights it was evaluated with.
        model.eval()
        sd_model = randomize(build(), seed=i)
        torch.save(sd_model.state_dict(), os.path.join(out, f"{name}.pth"))
        raw(x, os.path.join(out, f"{name}.input.f32"))
        raw(eval_logits, os.path.join(out, f"{name}.eval.f32"))
        raw(train_logits, os.path.join(out, f"{name}.train.f32"))
        index[name] = {"spec": spec, "inputShape": list(x.shape), "logitsShape": list(eval_logits.shape),
                       "trainSeed": TRAIN_SEED, "torch": torch.__version__}
        print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters", flush=True)
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)


if __name__ == "__main__":
    main()
