"""Writes lib/models/weights-registry.json: torchvision's ImageNet weights for every backbone
torch-attn builds (ResNet 18-152, VGG 11-19 with and without BatchNorm), read from Debian's
python3-torchvision (torchvision/models/resnet.py, vgg.py), so the project records them once.

    /usr/bin/python3 scripts/make-weights-registry.py

Per entry: the weights' name (torchvision's enum, e.g. ResNet50_Weights.IMAGENET1K_V2), the URL,
the file name (torch.hub caches under it) and the SHA-256 prefix torchvision puts in it, the
parameter count, ImageNet top-1/top-5 as torchvision reports them, and the eval transform. The
1000 ImageNet class names are stored once. torchvision 0.14 does not record file sizes.
"""
import json
import os
import re

import torchvision.models as m

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "lib", "models", "weights-registry.json")

ARCHS = {
    "resnet18": m.ResNet18_Weights, "resnet34": m.ResNet34_Weights, "resnet50": m.ResNet50_Weights,
    "resnet101": m.ResNet101_Weights, "resnet152": m.ResNet152_Weights,
    "vgg11": m.VGG11_Weights, "vgg11_bn": m.VGG11_BN_Weights, "vgg13": m.VGG13_Weights, "vgg13_bn": m.VGG13_BN_Weights,
    "vgg16": m.VGG16_Weights, "vgg16_bn": m.VGG16_BN_Weights, "vgg19": m.VGG19_Weights, "vgg19_bn": m.VGG19_BN_Weights,
}


def main():
    entries = []
    categories = None
    for arch, enum in ARCHS.items():
        for w in enum:
            if not w.name.startswith("IMAGENET1K_V"):  # VGG16's IMAGENET1K_FEATURES has no classifier
                continue
            file = os.path.basename(w.url)
            sha = re.search(r"-([0-9a-f]{8,})\.", file)
            cats = w.meta["categories"]
            if categories is None:
                categories = cats
            assert cats == categories, f"{arch} {w.name}: other class names"
            t = w.transforms()
            metrics = w.meta["_metrics"]["ImageNet-1K"]
            entries.append({
                "arch": arch,
                "name": f"{enum.__name__}.{w.name}",
                "version": w.name.split("_")[-1].lower(),  # v1 | v2
                "url": w.url,
                "file": file,
                "sha256Prefix": sha.group(1),
                "numParams": w.meta["num_params"],
                "numClasses": len(cats),
                "acc1": metrics["acc@1"],
                "acc5": metrics["acc@5"],
                "transform": {"resize": t.resize_size[0], "crop": t.crop_size[0], "mean": list(t.mean), "std": list(t.std), "interpolation": "bilinear"},
                "default": w == enum.DEFAULT,
            })
    with open(OUT, "w") as f:
        json.dump({"source": "torchvision 0.14 (Debian python3-torchvision), scripts/make-weights-registry.py", "categories": categories, "weights": entries}, f, indent=1)
        f.write("\n")
    print(f"{len(entries)} weights -> {OUT}")


if __name__ == "__main__":
    main()
