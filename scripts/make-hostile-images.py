#!/usr/bin/python3
"""Small hostile images for the decoder's hardening tests (committed):
/usr/bin/python3 scripts/make-hostile-images.py

  many-scans.jpg   a 16x16 progressive JPEG whose last scan is repeated 2,000 times: a decoder
                   without a scan limit spends its time on scans that add nothing (a few KB
                   here, tens of seconds with a larger image)
"""
import io, os

from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "data", "hostile")


def main():
    os.makedirs(OUT, exist_ok=True)
    img = Image.new("RGB", (16, 16))
    img.putdata([((x * 16) % 256, (y * 16) % 256, 128) for y in range(16) for x in range(16)])
    buf = io.BytesIO()
    img.save(buf, "JPEG", progressive=True, quality=90)
    data = buf.getvalue()
    last_sos = data.rfind(b"\xff\xda")
    eoi = data.rfind(b"\xff\xd9")
    scan = data[last_sos:eoi]
    with open(os.path.join(OUT, "many-scans.jpg"), "wb") as f:
        f.write(data[:eoi] + scan * 2000 + data[eoi:])
    print("wrote many-scans.jpg", os.path.getsize(os.path.join(OUT, "many-scans.jpg")), "bytes")


if __name__ == "__main__":
    main()
