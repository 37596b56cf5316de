#!/usr/bin/python3
"""Small .pth files for the checkpoint-reader tests, written by PyTorch itself (committed; a few
KB each). Run with Debian's PyTorch: /usr/bin/python3 scripts/make-pth-fixtures.py

  cbam64.pth        CBAM(64) state dict (peer layout), with cbam64.{input,output,channel,spatial}.f32
  dtypes.pth        one tensor per dtype, plus a transposed view and an offset view of one storage
  nested.pth        a training checkpoint: {'epoch', 'state_dict', 'optimizer'}
  evil.pth          a pickle that asks for os.system: must be refused, never run
  legacy.pth        the pre-1.6 non-zip format: refused with how to re-save
  script.pt         a TorchScript archive: refused with what to save instead
"""
import os, sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("TORCH_ATTN_PEER", os.path.join(HERE, "..", "..", "shared", "peer")))
from peer_models import CBAM  # noqa: E402

OUT = os.path.join(HERE, "..", "test", "fixtures", "pth")


def raw(t, name):
    t.detach().contiguous().float().numpy().astype("<f4").tofile(os.path.join(OUT, name))


class Evil:
    def __reduce__(self):
        return (os.system, ("echo torch-attn-fixture-ran-code > /tmp/torch-attn-pwned",))


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(7)
    cbam = CBAM(64)
    with torch.no_grad():
        for p in cbam.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    torch.save(cbam.state_dict(), os.path.join(OUT, "cbam64.pth"))
    x = torch.randn(2, 64, 8, 8, generator=g)
    with torch.no_grad():
        b, c = x.shape[:2]
        ca = cbam.channel_attn
        channel = torch.sigmoid(ca.fc(ca.avg_pool(x).view(b, c)) + ca.fc(ca.max_pool(x).view(b, c)))
        xc = x * channel.view(b, c, 1, 1)
        sa = cbam.spatial_attn
        spatial = torch.sigmoid(sa.conv(torch.cat([xc.mean(1, keepdim=True), xc.max(1, keepdim=True)[0]], 1)))
        raw(x, "cbam64.input.f32"); raw(cbam(x), "cbam64.output.f32")
        raw(channel, "cbam64.channel.f32"); raw(spatial, "cbam64.spatial.f32")

    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    torch.save({
        "f32": torch.tensor([1.5, -2.25, 3e38]), "f64": torch.tensor([1e-300, -0.5], dtype=torch.float64),
        "f16": torch.tensor([1.0, -2.0, 0.5], dtype=torch.float16), "bf16": torch.tensor([1.0, -2.0], dtype=torch.bfloat16),
        "i64": torch.tensor([2**62, -3]), "i32": torch.tensor([7, -8], dtype=torch.int32),
        "i16": torch.tensor([300, -300], dtype=torch.int16), "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 255], dtype=torch.uint8), "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(42.0), "empty": torch.zeros(0, 3),
        "base": base, "transposed": base.t(), "row": base[1],
    }, os.path.join(OUT, "dtypes.pth"))

    torch.save({"epoch": 3, "best": 0.91, "state_dict": cbam.state_dict(),
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.001, "params": [0, 1, 2]}]}},
               os.path.join(OUT, "nested.pth"))
    torch.save({"weight": torch.ones(2), "payload": Evil()}, os.path.join(OUT, "evil.pth"))
    torch.save(cbam.state_dict(), os.path.join(OUT, "legacy.pth"), _use_new_zipfile_serialization=False)
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), os.path.join(OUT, "script.pt"))
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)))


if __name__ == "__main__":
    main()
