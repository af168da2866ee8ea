"""Awkward image files made on the fly, shared by the decoding tests, the fuzzers and the app tests.

Each Case is one kind of upload a public Space will receive: either it must decode (and `check` says
what the pixels must look like) or it must be refused with an ImageError whose message contains `error`.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from functools import cache
from typing import Callable

import numpy as np
from PIL import Image

RED, BLUE, GREEN, WHITE = (255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 255, 255)


@dataclass
class Case:
    name: str
    data: bytes
    error: str | None = None  # a refused file: this text is in the message
    note: str | None = None  # a decoded file: this text is in one of the notes
    check: Callable[[np.ndarray], None] | None = None  # a decoded file: asserts on the RGB pixels
    size: tuple[int, int] | None = None  # a decoded file: (width, height) the models see


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def raw_png(width: int, height: int, bit_depth: int, color_type: int, rows: bytes) -> bytes:
    """A PNG written by hand, for what Pillow will not write (16-bit RGB) or must not be asked to (bombs)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows, 9))
            + png_chunk(b"IEND", b""))


def halves(left, right, size=(64, 32)) -> Image.Image:
    """Left half one colour, right half another: orientation and frame tests can tell where each went."""
    image = Image.new("RGB", size, left)
    image.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return image


def near(pixel, colour, tolerance=12) -> bool:
    return bool(np.all(np.abs(np.asarray(pixel, dtype=int) - np.asarray(colour)) <= tolerance))


def _with_exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(halves(RED, BLUE), "JPEG", quality=95, exif=exif)


def _sixteen_bit_gray() -> bytes:
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (16, 1))
    ramp[:, 0], ramp[:, -1] = 0, 65535
    return encode(Image.fromarray(ramp), "PNG")


def _sixteen_bit_rgb() -> bytes:
    pixel = struct.pack(">HHH", 65535, 32768, 0)  # orange, in 16 bits per channel
    rows = b"".join(b"\x00" + pixel * 32 for _ in range(16))
    return raw_png(32, 16, 16, 2, rows)


def _palette_with_transparency() -> bytes:
    image = Image.new("P", (32, 16), 0)
    image.putpalette([*BLUE, *GREEN] + [0] * (256 - 2) * 3)
    image.paste(1, (16, 0, 32, 16))
    return encode(image, "PNG", transparency=0)  # index 0 (the left half) is transparent


def _rgba_half_transparent() -> bytes:
    image = Image.new("RGBA", (32, 16), (255, 0, 0, 255))
    image.paste((0, 0, 255, 0), (16, 0, 32, 16))
    return encode(image, "PNG")


def _animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (32, 16), RED), Image.new("RGB", (32, 16), BLUE), Image.new("RGB", (32, 16), GREEN)]
    options = {"lossless": True} if fmt == "WEBP" else {}
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **options)


def _truncated(fmt: str) -> bytes:
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), fmt)
    return data[: len(data) // 2]


def _corrupt_png() -> bytes:
    data = bytearray(encode(Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)), "PNG"))
    start = data.index(b"IDAT") + 40
    data[start : start + 64] = bytes(64)  # damaged compressed data; the chunk's CRC no longer matches either
    return bytes(data)


def _corrupt_jpeg() -> bytes:
    data = bytearray(encode(Image.new("RGB", (64, 64), RED), "JPEG"))
    start = data.index(b"\xff\xc0")  # start-of-frame: its length and sizes become nonsense
    data[start + 2 : start + 12] = b"\xff" * 10
    return bytes(data)


def _decompression_bomb() -> bytes:
    # 8000 x 7000 8-bit grey = 56 megapixels of zeros, compressed to ~60 KB: a real zlib bomb.
    width, height = 8000, 7000
    return raw_png(width, height, 8, 0, (b"\x00" + bytes(width)) * height)


def _check_exif(orientation):
    def check(pixels):
        # the left half (red) of the stored picture is shown at the top (6), bottom (8) or right (3)
        top, bottom, left, right = pixels[2, 8], pixels[-3, 8], pixels[8, 2], pixels[8, -3]
        expected = {6: (top, RED, bottom, BLUE), 8: (top, BLUE, bottom, RED), 3: (left, BLUE, right, RED)}[orientation]
        assert near(expected[0], expected[1]) and near(expected[2], expected[3]), (orientation, top, bottom, left, right)

    return check


def _all(colour):
    def check(pixels):
        assert near(pixels.reshape(-1, 3).min(0), colour) and near(pixels.reshape(-1, 3).max(0), colour)

    return check


def _left_right(left, right):
    def check(pixels):
        assert near(pixels[4, 2], left) and near(pixels[4, -3], right), (pixels[4, 2], pixels[4, -3])

    return check


def _gray_ramp(pixels):
    assert (pixels[:, 0] == 0).all() and (pixels[:, -1] == 255).all()
    assert (np.diff(pixels[0, :, 0].astype(int)) >= 0).all(), "the 16-bit ramp stays a ramp"


@cache
def cases() -> list[Case]:
    return [
        Case("empty file", b"", error="empty"),
        Case("text file", b"this is not an image at all, just some words", error="not an image that can be read"),
        Case("PDF", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n", error="not an image that can be read"),
        Case("EPS (would run Ghostscript)", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\nshowpage\n",
             error="not an image that can be read"),
        Case("SVG", b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>',
             error="not an image that can be read"),
        Case("truncated JPEG", _truncated("JPEG"), error="damaged or truncated"),
        Case("truncated PNG", _truncated("PNG"), error="damaged or truncated"),
        Case("corrupt PNG data", _corrupt_png(), error="damaged or truncated"),
        Case("corrupt JPEG header", _corrupt_jpeg(), error="damaged or truncated"),
        Case("1x1 pixel", encode(Image.new("RGB", (1, 1)), "PNG"), error="at least 8"),
        Case("extremely wide", encode(Image.new("RGB", (840, 10)), "PNG"), error="aspect ratio"),
        Case("extremely tall", encode(Image.new("RGB", (8, 400)), "PNG"), error="aspect ratio"),
        Case("decompression bomb", _decompression_bomb(), error="megapixels"),
        Case("wide but usable (20:1)", encode(Image.new("RGB", (400, 20), GREEN), "PNG"), check=_all(GREEN), size=(400, 20)),
        Case("16-bit grey PNG", _sixteen_bit_gray(), note="scaled to 8 bits", check=_gray_ramp, size=(64, 16)),
        Case("16-bit RGB PNG", _sixteen_bit_rgb(), check=_all((255, 128, 0)), size=(32, 16)),
        Case("CMYK JPEG", encode(Image.new("CMYK", (32, 16), (0, 255, 255, 0)), "JPEG", quality=95), note="CMYK",
             check=_all(RED), size=(32, 16)),
        Case("palette with transparency", _palette_with_transparency(), note="transparent", check=_left_right(WHITE, GREEN)),
        Case("grayscale", encode(Image.new("L", (32, 16), 100), "PNG"), check=_all((100, 100, 100))),
        Case("bilevel", encode(Image.new("1", (32, 16), 1), "PNG"), check=_all(WHITE)),
        Case("grey + alpha", encode(Image.new("LA", (32, 16), (0, 0)), "PNG"), note="transparent", check=_all(WHITE)),
        Case("RGBA", _rgba_half_transparent(), note="transparent", check=_left_right(RED, WHITE)),
        Case("EXIF orientation 6", _with_exif(6), check=_check_exif(6), size=(32, 64)),
        Case("EXIF orientation 8", _with_exif(8), check=_check_exif(8), size=(32, 64)),
        Case("EXIF orientation 3", _with_exif(3), check=_check_exif(3), size=(64, 32)),
        Case("animated GIF", _animated("GIF"), note="first frame of 3", check=_all(RED)),
        Case("animated WebP", _animated("WEBP"), note="first frame of 3", check=_all(RED)),
        Case("animated PNG", _animated("PNG"), note="first frame of 3", check=_all(RED)),
        Case("BMP", encode(halves(RED, BLUE), "BMP"), check=_left_right(RED, BLUE)),
        Case("TIFF", encode(halves(RED, BLUE), "TIFF"), check=_left_right(RED, BLUE)),
    ]
