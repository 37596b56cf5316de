"""Peer model definitions and file helpers shared by the fixture and check scripts: the
shared peer models (../shared/peer/peer_models.py, or TORCH_ATTN_PEER), the SE-ResNet and
VGG-CBAM peers defined here, the parity cases, raw float32 files and safetensors by hand
(Debian has no python3-safetensors; the format is an 8-byte little-endian header length, a
JSON header, then the tensor bytes).
"""
import json, os, struct, sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision import models

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("TORCH_ATTN_PEER", os.path.join(HERE, "..", "..", "shared", "peer")))
from peer_models import CBAM, PeerCBAMCNN, PeerNAMResNet, PeerResNetCBAM, randomize  # noqa: E402,F401


def set_peer_threads():
    """The references compute with the threads torch-attn computes with: 2 on these machines, or
    OMP_NUM_THREADS where it is set (scripts/check-libtorch2.sh sets 1: Debian 13's oneDNN is wrong
    with several threads, torch-attn caps itself at 1 there, and a reference computed with 2
    differs in its reductions' order, by up to 4e-6 after three SGD steps and 3e-2 with Adam)."""
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or 2))


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
    return block_attention_resnet(depth, num_classes, "se", SE)


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


class OrigChannelGate(nn.Module):
    """The CBAM authors' channel gate: Flatten + Linear MLP with biases, any of four pools."""

    def __init__(self, c, ratio=16, pool_types=("avg", "max")):
        super().__init__()
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(c, c // ratio), nn.ReLU(), nn.Linear(c // ratio, c))
        self.pool_types = pool_types

    def forward(self, x):
        hw = (x.size(2), x.size(3))
        total = None
        for p in self.pool_types:
            if p == "avg":
                d = F.avg_pool2d(x, hw, stride=hw)
            elif p == "max":
                d = F.max_pool2d(x, hw, stride=hw)
            elif p == "lp":
                d = F.lp_pool2d(x, 2, hw, stride=hw)
            else:
                flat = x.view(x.size(0), x.size(1), -1)
                s, _ = flat.max(dim=2, keepdim=True)
                d = s + (flat - s).exp().sum(dim=2, keepdim=True).log()
            out = self.mlp(d)
            total = out if total is None else total + out
        return x * torch.sigmoid(total).unsqueeze(2).unsqueeze(3)


class ConvBn(nn.Module):
    """2 -> 1 channel k x k conv and BatchNorm2d(1): the spatial branch of both other layouts."""

    def __init__(self, k=7, momentum=0.1):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, k, padding=(k - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(1, momentum=momentum)

    def forward(self, x):
        return self.bn(self.conv(x))


class OrigSpatialGate(nn.Module):
    def __init__(self):
        super().__init__()
        self.spatial = ConvBn(momentum=0.01)

    def forward(self, x):
        pooled = torch.cat((x.max(1)[0].unsqueeze(1), x.mean(1).unsqueeze(1)), dim=1)  # [max, mean]
        return x * torch.sigmoid(self.spatial(pooled))


class OrigCBAM(nn.Module):
    def __init__(self, c, pool_types=("avg", "max")):
        super().__init__()
        self.ChannelGate = OrigChannelGate(c, 16, pool_types)
        self.SpatialGate = OrigSpatialGate()

    def forward(self, x):
        return self.SpatialGate(self.ChannelGate(x))


class TimmChannelAttn(nn.Module):
    """timm's CBAM channel attention: 1x1 convolutions as the MLP."""

    def __init__(self, c, rd):
        super().__init__()
        self.fc1 = nn.Conv2d(c, rd, 1, bias=False)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(rd, c, 1, bias=False)

    def forward(self, x):
        a = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        m = self.fc2(self.act(self.fc1(x.amax((2, 3), keepdim=True))))
        return x * torch.sigmoid(a + m)


class TimmSpatialAttn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = ConvBn()

    def forward(self, x):
        return x * torch.sigmoid(self.conv(torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)))


class TimmCbam(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.channel = TimmChannelAttn(c, c // 16)
        self.spatial = TimmSpatialAttn()

    def forward(self, x):
        return self.spatial(self.channel(x))


def block_attention_resnet(depth, num_classes, name, make):
    """CIFAR-stem torchvision ResNet with `make(channels)` as `blk.<name>` in every block."""
    m = getattr(models, f"resnet{depth}")(num_classes=num_classes)
    m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    for layer in [m.layer1, m.layer2, m.layer3, m.layer4]:
        for blk in layer:
            last_bn = blk.bn3 if hasattr(blk, "bn3") else blk.bn2
            setattr(blk, name, make(last_bn.num_features))
            blk.forward = _block_forward(blk, getattr(blk, name))
    return m


class DataParallelKeys(nn.Module):
    """Saves its model's state dict with the `module.` prefix nn.DataParallel adds."""

    def __init__(self, model):
        super().__init__()
        self.module = model

    def forward(self, x):
        return self.module(x)


CASES = {
    "resnet18_cbam": (lambda: PeerResNetCBAM(18, 10), {"arch": "resnet", "depth": 18, "numClasses": 10, "attention": {"kind": "cbam"}, "placement": "stage"}),
    "resnet50_cbam": (lambda: PeerResNetCBAM(50, 10), {"arch": "resnet", "depth": 50, "numClasses": 10, "attention": {"kind": "cbam"}, "placement": "stage"}),
    "resnet18_nam": (lambda: PeerNAMResNet(18, 10), {"arch": "resnet", "depth": 18, "numClasses": 10, "attention": {"kind": "nam"}, "placement": "block"}),
    "resnet50_nam": (lambda: PeerNAMResNet(50, 100), {"arch": "resnet", "depth": 50, "numClasses": 100, "attention": {"kind": "nam"}, "placement": "block"}),
    "cbamcnn": (lambda: PeerCBAMCNN(10), {"arch": "cbamcnn", "numClasses": 10}),
    "vgg16_bn_cbam": (lambda: VGGCBAM(16, 10), {"arch": "vgg", "depth": 16, "batchNorm": True, "numClasses": 10, "attention": {"kind": "cbam"}}),
    "se_resnet18": (lambda: se_resnet(18, 10), {"arch": "resnet", "depth": 18, "numClasses": 10, "attention": {"kind": "se"}, "placement": "block"}),
    # Other CBAM layouts, imported with loadStateDict's `layout` option.
    "resnet18_cbam_original": (
        lambda: DataParallelKeys(block_attention_resnet(18, 10, "cbam", lambda c: OrigCBAM(c, ("avg", "max", "lp", "lse")))),
        {"arch": "resnet", "depth": 18, "numClasses": 10, "placement": "block",
         "attention": {"kind": "cbam", "mlpBias": True, "spatialPoolOrder": "max-mean", "spatialNorm": "bn", "poolTypes": ["avg", "max", "lp", "lse"]}}),
    "resnet18_cbam_timm": (
        lambda: block_attention_resnet(18, 10, "se", TimmCbam),
        {"arch": "resnet", "depth": 18, "numClasses": 10, "placement": "block",
         "attention": {"kind": "cbam", "spatialNorm": "bn"}}),
}
LAYOUTS = {"resnet18_cbam_original": "cbam-original", "resnet18_cbam_timm": "timm-cbam"}


def raw(t, path):
    t.detach().contiguous().float().numpy().astype("<f4").tofile(path)


def read_raw(path, shape):
    import numpy as np
    return torch.from_numpy(np.fromfile(path, dtype="<f4").reshape(shape))


_ST_CODES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
             torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
             torch.uint8: "U8", torch.bool: "BOOL"}
_ST_DTYPES = {v: k for k, v in _ST_CODES.items()}


def write_safetensors(state_dict, path):
    header, blobs, offset = {}, [], 0
    for name, t in state_dict.items():
        t = t.detach().contiguous().cpu()
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _ST_CODES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        buf = bytearray(data[8 + n + begin:8 + n + end])
        dtype = _ST_DTYPES[info["dtype"]]
        out[name] = torch.frombuffer(buf, dtype=dtype).reshape(info["shape"]) if buf else torch.zeros(info["shape"], dtype=dtype)
    return out
