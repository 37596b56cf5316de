"""Writes the small, committed fixtures of the data tests (test/fixtures/data), with Debian's
python3-torchvision and PIL: torchvision's outputs for the deterministic transforms, CIFAR
batches in the python formats torchvision downloads, and a tiny image folder with PIL's decodes.
usage: /usr/bin/python3 scripts/make-data-fixtures.py
"""
import io, json, os, pickle, struct, base64, zlib
import numpy as np
import torch
import torchvision.transforms.functional as F
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'data')
rng = np.random.default_rng(1234)


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()


# ---- transforms: uint8 HWC inputs, torchvision's tensor-path outputs ------------------------
def smooth_image(h, w):
    """A photo-like image (gradients plus noise), so colour ops meet every hue sector."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / max(w - 1, 1), y * 255 / max(h - 1, 1), (x + y) * 255 / max(h + w - 2, 1)], -1)
    return np.clip(base + rng.integers(-40, 40, (h, w, 3)), 0, 255).astype(np.uint8)


images = {
    'noise': rng.integers(0, 256, (13, 17, 3), dtype=np.uint8),
    'smooth': smooth_image(32, 32),
    'photo': smooth_image(24, 36),
}
images['smooth'][0:4, 0:4] = 128  # a gray patch: equal channels (hue/saturation edge case)


def chw(a):
    return torch.from_numpy(a).permute(2, 0, 1).contiguous()


def hwc(t):
    return t.permute(1, 2, 0).contiguous().numpy()


cases = []


def case(name, image, steps, fn, float_out=False):
    out = fn(chw(images[image]))
    arr = out.numpy() if float_out else hwc(out)
    cases.append({'name': name, 'image': image, 'steps': steps, 'dtype': 'float32' if float_out else 'uint8',
                  'shape': list(arr.shape), 'expected': b64(arr.astype(np.float32 if float_out else np.uint8))})


for mode in ['constant', 'edge', 'reflect', 'symmetric']:
    case(f'pad {mode}', 'noise', [{'op': 'pad', 'padding': [1, 2, 3, 4], 'paddingMode': mode, 'fill': [7]}],
         lambda t, m=mode: F.pad(t, [1, 2, 3, 4], fill=7, padding_mode=m))
case('crop inside', 'noise', [{'op': 'crop', 'top': 2, 'left': 3, 'size': [8, 9]}], lambda t: F.crop(t, 2, 3, 8, 9))
case('crop past the edge', 'noise', [{'op': 'crop', 'top': -2, 'left': 10, 'size': [8, 9]}], lambda t: F.crop(t, -2, 10, 8, 9))
case('hflip', 'noise', [{'op': 'hflip'}], F.hflip)
case('vflip', 'noise', [{'op': 'vflip'}], F.vflip)
for f in [0.0, 0.7, 1.3, 2.5]:
    case(f'brightness {f}', 'photo', [{'op': 'adjustBrightness', 'factor': f}], lambda t, f=f: F.adjust_brightness(t, f))
    case(f'contrast {f}', 'photo', [{'op': 'adjustContrast', 'factor': f}], lambda t, f=f: F.adjust_contrast(t, f))
    case(f'saturation {f}', 'photo', [{'op': 'adjustSaturation', 'factor': f}], lambda t, f=f: F.adjust_saturation(t, f))
for f in [-0.5, -0.3, -0.05, 0.1, 0.45]:
    for image in ['photo', 'smooth', 'noise']:
        case(f'hue {f} {image}', image, [{'op': 'adjustHue', 'factor': f}], lambda t, f=f: F.adjust_hue(t, f))
for angle in [30.0, -15.0, 90.0, 7.5]:
    for image in ['smooth', 'photo', 'noise']:
        case(f'rotate {angle} {image}', image, [{'op': 'rotate', 'angle': angle}],
             lambda t, a=angle: F.rotate(t, a, interpolation=F.InterpolationMode.NEAREST, fill=0))
case('rotate with fill', 'smooth', [{'op': 'rotate', 'angle': 40.0, 'fill': [10, 20, 30]}],
     lambda t: F.rotate(t, 40.0, interpolation=F.InterpolationMode.NEAREST, fill=[10, 20, 30]))
for size in [[20, 24], [7, 9], [32, 11]]:
    case(f'resize {size}', 'photo', [{'op': 'resize', 'size': size}],
         lambda t, s=size: F.resize(t, s, interpolation=F.InterpolationMode.BILINEAR, antialias=True))
case('resize shorter edge', 'photo', [{'op': 'resize', 'size': [10]}],
     lambda t: F.resize(t, 10, interpolation=F.InterpolationMode.BILINEAR, antialias=True))
case('resize shorter edge, maxSize', 'photo', [{'op': 'resize', 'size': [20], 'maxSize': 25}],
     lambda t: F.resize(t, 20, interpolation=F.InterpolationMode.BILINEAR, max_size=25, antialias=True))
case('centerCrop smaller', 'noise', [{'op': 'centerCrop', 'size': [8, 10]}], lambda t: F.center_crop(t, [8, 10]))
case('centerCrop odd offsets', 'noise', [{'op': 'centerCrop', 'size': [6, 6]}], lambda t: F.center_crop(t, [6, 6]))
case('centerCrop larger (padded)', 'noise', [{'op': 'centerCrop', 'size': [16, 20]}], lambda t: F.center_crop(t, [16, 20]))
mean, std = [0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]
case('toTensor', 'photo', [{'op': 'toTensor'}], lambda t: F.convert_image_dtype(t, torch.float32), float_out=True)
case('toTensor + normalize', 'photo', [{'op': 'toTensor'}, {'op': 'normalize', 'mean': mean, 'std': std}],
     lambda t: F.normalize(F.convert_image_dtype(t, torch.float32), mean, std), float_out=True)
case('crop, flip, jitter, rotate, normalize', 'smooth',
     [{'op': 'pad', 'padding': [4]}, {'op': 'crop', 'top': 3, 'left': 6, 'size': [32, 32]}, {'op': 'hflip'},
      {'op': 'adjustContrast', 'factor': 1.1}, {'op': 'adjustHue', 'factor': -0.07}, {'op': 'adjustBrightness', 'factor': 0.9},
      {'op': 'adjustSaturation', 'factor': 1.2}, {'op': 'rotate', 'angle': -11.0}, {'op': 'toTensor'},
      {'op': 'normalize', 'mean': mean, 'std': std}],
     lambda t: F.normalize(F.convert_image_dtype(F.rotate(F.adjust_saturation(F.adjust_brightness(F.adjust_hue(
         F.adjust_contrast(F.hflip(F.crop(F.pad(t, [4]), 3, 6, 32, 32)), 1.1), -0.07), 0.9), 1.2), -11.0, fill=0),
         torch.float32), mean, std), float_out=True)

os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, 'transforms.json'), 'w') as f:
    json.dump({'torchvision': __import__('torchvision').__version__,
               'images': {k: {'shape': list(v.shape), 'pixels': b64(v)} for k, v in images.items()},
               'cases': cases}, f)


# ---- CIFAR python batches -----------------------------------------------------------------
def py2_pickle(obj):
    """Python 2 cPickle protocol 2, as in the official CIFAR python archives: str values are
    BINSTRING bytes and numpy arrays are rebuilt from a str buffer."""
    out = bytearray(b'\x80\x02')

    def s(b):
        out.extend((b'U' + bytes([len(b)])) if len(b) < 256 else (b'T' + struct.pack('<I', len(b))))
        out.extend(b)

    def i(v):
        out.extend(b'K' + bytes([v]) if 0 <= v < 256 else b'J' + struct.pack('<i', v))

    def value(v):
        if isinstance(v, dict):
            out.extend(b'}(')
            for k, x in v.items():
                s(k.encode()); value(x)
            out.extend(b'u')
        elif isinstance(v, list):
            out.extend(b'](')
            for x in v:
                value(x)
            out.extend(b'e')
        elif isinstance(v, str):
            s(v.encode())
        elif isinstance(v, int):
            i(v)
        elif isinstance(v, np.ndarray):
            out.extend(b'cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R(K\x01')
            for d in v.shape:
                i(d)
            out.extend(b'\x86cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89')
            s(v.tobytes())
            out.extend(b'tb')
        else:
            raise TypeError(type(v))

    value(obj)
    out.extend(b'.')
    return bytes(out)


def cifar_images(n):
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8)


c10 = os.path.join(OUT, 'cifar-10-batches-py')
os.makedirs(c10, exist_ok=True)
meta10 = {'num_cases_per_batch': 3, 'label_names': ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'], 'num_vis': 3072}
expect = {}
for name, n in [('data_batch_1', 3), ('data_batch_2', 2), ('test_batch', 2)]:
    data, labels = cifar_images(n), [int(x) for x in rng.integers(0, 10, n)]
    with open(os.path.join(c10, name), 'wb') as f:
        f.write(py2_pickle({'batch_label': name, 'labels': labels, 'data': data, 'filenames': [f'img_{k}.png' for k in range(n)]}))
    expect[name] = {'labels': labels, 'data': b64(data)}
with open(os.path.join(c10, 'batches.meta'), 'wb') as f:
    f.write(py2_pickle(meta10))
# Python 3 pickles of CIFAR-100's layout (protocol 2, as pickle.dump of numpy arrays writes them).
c100 = os.path.join(OUT, 'cifar-100-python')
os.makedirs(c100, exist_ok=True)
fine_names = [f'fine_{k}' for k in range(100)]
coarse_names = [f'coarse_{k}' for k in range(20)]
for name, n in [('train', 4), ('test', 2)]:
    data = cifar_images(n)
    fine = [int(x) for x in rng.integers(0, 100, n)]
    coarse = [int(x) for x in rng.integers(0, 20, n)]
    with open(os.path.join(c100, name), 'wb') as f:
        pickle.dump({b'filenames': [b'x'] * n, b'batch_label': b'b', b'fine_labels': fine, b'coarse_labels': coarse, b'data': data}, f, protocol=2)
    expect['100/' + name] = {'fine': fine, 'coarse': coarse, 'data': b64(data)}
with open(os.path.join(c100, 'meta'), 'wb') as f:
    pickle.dump({b'fine_label_names': [s.encode() for s in fine_names], b'coarse_label_names': [s.encode() for s in coarse_names]}, f, protocol=2)

# ---- an image folder: PNG variants decode exactly; JPEG as PIL decodes it ---------------------
folder = os.path.join(OUT, 'folder')
decoded = {}
def save(rel, img, **kw):
    path = os.path.join(folder, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path, **kw)
    decoded[rel] = b64(np.asarray(Image.open(path).convert('RGB')))
save('cat/a.png', Image.fromarray(images['noise']))
save('cat/b.jpg', Image.fromarray(images['photo']), quality=90)
save('cat/nested/c.png', Image.fromarray(images['noise'][:, :, 0]))                     # grayscale
save('dog/d.png', Image.fromarray(np.dstack([images['noise'], rng.integers(0, 256, (13, 17), dtype=np.uint8)])))  # RGBA
save('dog/e.png', Image.fromarray(images['noise']).convert('P', palette=Image.ADAPTIVE, colors=16))  # palette
save('dog/f.JPEG', Image.fromarray(images['smooth']).convert('L'), quality=85)           # grayscale JPEG, upper-case extension
with open(os.path.join(folder, 'dog', 'notes.txt'), 'w') as f:
    f.write('not an image\n')
expect['folder'] = decoded

# ---- PNG colour types and depths PIL cannot write, written chunk by chunk -----------------------
# PIL converts the stored samples (no gamma, no sBIT, no ICC): 16-bit colour by its high byte, 16-bit
# gray is mode "I" which convert('RGB') clips at 255, 1/2/4-bit gray scaled to 0..255, tRNS ignored.
def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)

def packed(values, depth):
    bits = ''.join(format(int(v), '0%db' % depth) for v in values)
    bits += '0' * (-len(bits) % 8)
    return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]

def write_png(rel, samples, depth, color, extra=b'', interlace=False):
    """samples: (h, w, channels) array of the stored values; rows filtered with filter 0."""
    h, w = samples.shape[:2]
    def rows(a):
        if depth < 8:
            return [packed(a[y, :, 0], depth) for y in range(a.shape[0])]
        return [a[y].astype('>u2' if depth == 16 else 'u1').tobytes() for y in range(a.shape[0])]
    if interlace:
        raw = b''
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.size:
                raw += b''.join(b'\x00' + r for r in rows(sub))
    else:
        raw = b''.join(b'\x00' + r for r in rows(samples))
    ihdr = struct.pack('>IIBBBBB', w, h, depth, color, 0, 0, 1 if interlace else 0)
    data = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + extra + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')
    path = os.path.join(OUT, 'png-variants', rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)
    png_decoded[rel] = b64(np.asarray(Image.open(path).convert('RGB')))

png_decoded = {}
h, w = 9, 11
u16 = lambda c: rng.integers(0, 65536, (h, w, c), dtype=np.uint16)
low16 = rng.integers(0, 400, (h, w, 1), dtype=np.uint16)  # below and above 255: PIL clips gray 16-bit
gamma = chunk(b'gAMA', struct.pack('>I', 100000))       # gamma 1.0: libpng's simplified API would convert
write_png('x/gray16.png', low16, 16, 0)
write_png('x/gray16-trns.png', low16, 16, 0, chunk(b'tRNS', struct.pack('>H', 7)))
write_png('x/gray-alpha16.png', u16(2), 16, 4)
write_png('x/rgb16.png', u16(3), 16, 2)
write_png('x/rgb16-gamma.png', u16(3), 16, 2, gamma)
write_png('x/rgba16.png', u16(4), 16, 6)
write_png('x/rgb16-interlaced.png', u16(3), 16, 2, interlace=True)
write_png('x/rgb8-gamma.png', rng.integers(0, 256, (h, w, 3), dtype=np.uint8), 8, 2, gamma + chunk(b'sBIT', b'\x05\x05\x05'))
write_png('x/rgb8-trns.png', rng.integers(0, 256, (h, w, 3), dtype=np.uint8), 8, 2, chunk(b'tRNS', struct.pack('>HHH', 1, 2, 3)))
for depth in (1, 2, 4):
    write_png(f'x/gray{depth}.png', rng.integers(0, 1 << depth, (h, w, 1), dtype=np.uint8), depth, 0)
write_png('x/palette4-trns.png', rng.integers(0, 16, (h, w, 1), dtype=np.uint8), 4, 3,
          chunk(b'PLTE', bytes(rng.integers(0, 256, 48, dtype=np.uint8))) + chunk(b'tRNS', b'\x00\x80\xff'))
write_png('x/palette8-interlaced.png', rng.integers(0, 256, (h, w, 1), dtype=np.uint8), 8, 3,
          chunk(b'PLTE', bytes(rng.integers(0, 256, 768, dtype=np.uint8))), interlace=True)
write_png('x/text-chunks.png', rng.integers(0, 256, (h, w, 3), dtype=np.uint8), 8, 2,
          chunk(b'tEXt', b'Comment\x00hello') + chunk(b'zTXt', b'Big\x00\x00' + zlib.compress(b'a' * 100000)))
expect['png-variants'] = png_decoded
with open(os.path.join(OUT, 'expected.json'), 'w') as f:
    json.dump(expect, f)
print('wrote', OUT)
