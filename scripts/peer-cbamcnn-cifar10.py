"""The CBAM-CNN recipe (recipes/cbamcnn-cifar10.yaml, seed document 003) in PyTorch, on the same
CIFAR-10 image files, for a side-by-side curve with torch-attn's run: the document's model
(../shared/peer/peer_models.py PeerCBAMCNN), Adam 1e-3, StepLR(20, 0.1) stepped per epoch,
batch 64 with the last partial batch kept, the same augmentation and normalisation, torchvision's
ImageFolder reading the JPEGs with PIL. Prints one JSON line per epoch.

    /usr/bin/python3 scripts/peer-cbamcnn-cifar10.py DIR [--epochs 10] [--precision bf16|fp32] [--threads 2]

DIR holds train/<class>/*.jpg and test/<class>/*.jpg.
"""
import argparse
import json
import os
import sys
import time

import torch
from torchvision import datasets, transforms

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "peer"))
from peer_models import PeerCBAMCNN  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    norm = transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    train_t = transforms.Compose([
        transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
        transforms.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.1),
        transforms.RandomRotation(15), transforms.ToTensor(), norm])
    test_t = transforms.Compose([transforms.ToTensor(), norm])
    train = datasets.ImageFolder(os.path.join(a.dir, "train"), train_t)
    test = datasets.ImageFolder(os.path.join(a.dir, "test"), test_t)
    tl = torch.utils.data.DataLoader(train, batch_size=64, shuffle=True, num_workers=a.workers)
    vl = torch.utils.data.DataLoader(test, batch_size=64, shuffle=False, num_workers=a.workers)
    model = PeerCBAMCNN(num_classes=10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.1)
    loss_fn = torch.nn.CrossEntropyLoss()
    amp = a.precision == "bf16"
    for epoch in range(1, a.epochs + 1):
        t0 = time.time()
        model.train()
        correct = total = 0
        loss_sum = 0.0
        for x, y in tl:
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                out = model(x)
            loss = loss_fn(out.float(), y)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * y.numel()
            correct += (out.argmax(1) == y).sum().item()
            total += y.numel()
        train_seconds = time.time() - t0
        model.eval()
        tc = tt = 0
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            for x, y in vl:
                tc += (model(x).argmax(1) == y).sum().item()
                tt += y.numel()
        sched.step()
        print(json.dumps({"epoch": epoch, "trainLoss": round(loss_sum / total, 4), "trainAcc": round(correct / total, 4), "testTop1": round(tc / tt, 4),
                          "imagesPerSecond": round(total / train_seconds, 1), "seconds": round(time.time() - t0, 1), "precision": a.precision}), flush=True)


if __name__ == "__main__":
    main()
