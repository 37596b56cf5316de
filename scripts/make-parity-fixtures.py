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
  optim_<sgd|adam|adamw>.{pth,json}         CBAMCNN after 3 optimizer steps, for optimizer parity
  index.json                      shapes and the torch-attn model spec of each case
The state dicts are hundreds of MB in all, so they are generated (by the test suite's global
setup, or CI), never committed.
"""
import json, os, sys

import torch

from peer_cases import CASES, LAYOUTS, models, randomize, raw, set_peer_threads, write_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN_SEED = 123  # torch.manual_seed before the train-mode forward (dropout masks)
SAFETENSORS = {"cbamcnn", "se_resnet18"}


# Optimizer parity: CBAMCNN from the cbamcnn case, eval mode (deterministic), two groups (head at
# 1e-2, the rest at 1e-3), three steps of cross-entropy on the case's input with labels 0..3.
OPTIMIZERS = {
    "sgd": ("sgd", {"momentum": 0.9, "nesterov": True, "weightDecay": 5e-4}),
    "adam": ("adam", {"weightDecay": 1e-4}),
    "adamw": ("adamw", {"weightDecay": 1e-2, "amsgrad": True}),
}
OPTIMIZER_STEPS = 3


def optimizer_fixtures(out):
    build, _ = CASES["cbamcnn"]
    for name, (kind, options) in OPTIMIZERS.items():
        model = build()
        model.load_state_dict(torch.load(os.path.join(out, "cbamcnn.pth")))
        model.eval()
        head = [p for n, p in model.named_parameters() if n.startswith("fc")]
        rest = [p for n, p in model.named_parameters() if not n.startswith("fc")]
        wd = options.get("weightDecay", 0)
        if kind == "sgd":
            groups = [{"params": head, "lr": 1e-2}, {"params": rest, "lr": 1e-3}]
            opt = torch.optim.SGD(groups, lr=1e-3, momentum=options["momentum"], nesterov=options["nesterov"], weight_decay=wd)
        else:
            cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
            opt = cls([{"params": head, "lr": 1e-2}, {"params": rest, "lr": 1e-3}], weight_decay=wd, amsgrad=options.get("amsgrad", False))
        x = torch.from_numpy(__import__("numpy").fromfile(os.path.join(out, "cbamcnn.input.f32"), dtype="<f4").reshape(4, 3, 32, 32))
        y = torch.tensor([0, 1, 2, 3])
        losses = []
        for _ in range(OPTIMIZER_STEPS):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        torch.save(model.state_dict(), os.path.join(out, f"optim_{name}.pth"))
        with open(os.path.join(out, f"optim_{name}.json"), "w") as f:
            json.dump({"type": kind, "options": options, "steps": OPTIMIZER_STEPS, "losses": losses}, f)


def scheduler_fixtures(out, steps=14):
    """lr sequences of torch.optim.lr_scheduler over two groups (1e-3, 1e-5), `steps` steps."""
    S = torch.optim.lr_scheduler

    def run(make, metrics=None):
        p = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
        opt = torch.optim.SGD([{"params": [p[0]], "lr": 1e-3}, {"params": [p[1]], "lr": 1e-5}], lr=1e-3)
        sched = make(opt)
        seq = [[g["lr"] for g in opt.param_groups]]
        for i in range(steps):
            opt.step()
            sched.step(metrics[i]) if metrics else sched.step()
            seq.append([g["lr"] for g in opt.param_groups])
        return seq

    plateau_metrics = [1.0, 0.9, 0.9, 0.95, 0.91, 0.9, 0.92, 0.8, 0.85, 0.85, 0.86, 0.87, 0.9, 0.7]
    fixtures = {
        "stepLR": {"args": [3, 0.5], "lrs": run(lambda o: S.StepLR(o, 3, 0.5))},
        "multiStepLR": {"args": [[2, 5], 0.1], "lrs": run(lambda o: S.MultiStepLR(o, [2, 5], 0.1))},
        "cosineAnnealing": {"args": [10, 1e-6], "lrs": run(lambda o: S.CosineAnnealingLR(o, 10, 1e-6))},
        "linearWarmup+cosineAnnealing": {"args": [4, 0.1, 8, 0], "lrs": run(lambda o: S.SequentialLR(
            o, [S.LinearLR(o, start_factor=0.1, total_iters=4), S.CosineAnnealingLR(o, 8, 0)], milestones=[4]))},
        "reduceOnPlateau": {"args": {"patience": 2, "factor": 0.5, "cooldown": 1}, "metrics": plateau_metrics,
                            "lrs": run(lambda o: S.ReduceLROnPlateau(o, patience=2, factor=0.5, cooldown=1), plateau_metrics)},
    }
    fixtures["warmupFrom0+cosinePerEpoch"] = warmup_then_epochs()
    with open(os.path.join(out, "schedulers.json"), "w") as f:
        json.dump(fixtures, f)


def warmup_then_epochs(batches=7, warmup=10, t_max=5, epochs=5):
    """The NAM document's schedule in torch terms: a linear warm-up from 0 stepped per batch for
    `warmup` steps, then cosine annealing stepped at each epoch end (its LRScheduler callback).
    The lr each batch trains with, two groups (1e-2, 1e-4)."""
    S = torch.optim.lr_scheduler
    p = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    opt = torch.optim.SGD([{"params": [p[0]], "lr": 1e-2}, {"params": [p[1]], "lr": 1e-4}], lr=1e-2)
    sched = S.SequentialLR(opt, [S.LambdaLR(opt, lambda t: t / warmup), S.CosineAnnealingLR(opt, t_max)], milestones=[warmup])
    lrs = []
    for _ in range(epochs):
        for _ in range(batches):
            lrs.append([g["lr"] for g in opt.param_groups])
            opt.step()
            if sched.last_epoch < warmup:
                sched.step()
        if sched.last_epoch >= warmup:
            sched.step()
    return {"batches": batches, "warmup": warmup, "tMax": t_max, "epochs": epochs, "base": [1e-2, 1e-4], "lrs": lrs}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "test", "fixtures", "parity")
    os.makedirs(out, exist_ok=True)
    set_peer_threads()
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
    optimizer_fixtures(out)
    scheduler_fixtures(out)
    vgg = models.vgg16_bn()
    with open(os.path.join(out, "tv_vgg16_bn.keys.json"), "w") as f:
        json.dump({k: list(v.shape) for k, v in vgg.state_dict().items()}, f)
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)


if __name__ == "__main__":
    main()
