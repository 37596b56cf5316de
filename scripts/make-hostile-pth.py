#!/usr/bin/python3
"""Small hostile .pth files for the reader's hardening tests (committed, a few KB each), made
with Debian's PyTorch and Python's zipfile: /usr/bin/python3 scripts/make-hostile-pth.py

  nul_key.pth         keys 'a\\0b' and 'a': a NUL byte must not make them one key
  proto_key.pth       a key '__proto__': an entry like any other, never the object's prototype
  stride0.pth         torch.zeros(1).expand(2**21): 4 stored bytes naming 8 MiB (torch.load keeps a view)
  duplicate_entry.pth the same zip entry twice, with different bytes (torch.load takes the first)
  two_prefixes.pth    entries under two top-level folders (PyTorch refuses the archive)
  cycle.pth           a list holding itself and a 4 MiB broadcast tensor, beside the state dict:
                      a reader with reference-counted values leaks the tensor on every read
"""
import io, os, zipfile
from collections import OrderedDict

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "pth", "hostile")


def rezip(src, dst, extra):
    """Copies the archive src to dst (stored entries, in order) and appends `extra` entries."""
    stamp = (1980, 1, 1, 0, 0, 0)  # fixed: the same bytes on every run
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            zout.writestr(zipfile.ZipInfo(info.filename, stamp), zin.read(info.filename))
        for name, data in extra:
            zout.writestr(zipfile.ZipInfo(name, stamp), data)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.save(OrderedDict([("a\x00b", torch.ones(2)), ("a", torch.zeros(2))]), os.path.join(OUT, "nul_key.pth"))
    torch.save(OrderedDict([("__proto__", torch.ones(3)), ("weight", torch.zeros(3))]), os.path.join(OUT, "proto_key.pth"))
    torch.save(OrderedDict([("wide", torch.zeros(1).expand(2 ** 21))]), os.path.join(OUT, "stride0.pth"))
    junk = [torch.zeros(1).expand(2 ** 20)]
    junk.append(junk)
    torch.save({"junk": junk, "w": torch.ones(2)}, os.path.join(OUT, "cycle.pth"))
    base = os.path.join(OUT, "base.tmp")
    torch.save(OrderedDict([("w", torch.arange(4, dtype=torch.float32))]), base)
    with zipfile.ZipFile(base) as z:
        data = [n for n in z.namelist() if n.endswith("/data/0")][0]
        prefix = data.split("/")[0]
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name: that is the point
        rezip(base, os.path.join(OUT, "duplicate_entry.pth"), [(data, torch.full((4,), 7.0).numpy().tobytes())])
    rezip(base, os.path.join(OUT, "two_prefixes.pth"), [("other/data.pkl", b"\x80\x02}q\x00.")])
    os.remove(base)
    print("wrote", sorted(os.listdir(OUT)), "prefix", prefix)


if __name__ == "__main__":
    main()
