"""Images for requests: real PNGs of a size, image bombs, and TF Serving `{"b64": ...}` bodies."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

from PIL import Image


def png(width: int, height: int, gray: int = 90) -> bytes:
    """A uniform gray PNG of `width` x `height` pixels."""
    buffer = io.BytesIO()
    Image.new("L", (width, height), gray).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` pixels: an image bomb, never decoded
    here."""
    image = bytearray(png(1, 1))
    header = b"IHDR" + struct.pack(">II", width, height) + bytes(image[24:29])
    image[12:29] = header
    image[29:33] = struct.pack(">I", zlib.crc32(header))
    return bytes(image)


def b64_request(*images: bytes) -> bytes:
    """A TF Serving row-format body of `{"b64": ...}` instances."""
    instances = [{"b64": base64.b64encode(image).decode()} for image in images]
    return json.dumps({"instances": instances}).encode()
