"""Safe image decoding: formats, modes, orientation, bombs and damaged data."""

from __future__ import annotations

import io
import random
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from biometrics.imaging import PORTRAIT_MODES, ImageRejected, decode_image, downscale, to_jpeg

ORIENTATION = 0x0112


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def rejection(data: bytes, **limits: object) -> str:
    with pytest.raises(ImageRejected) as caught:
        decode_image(data, **limits)  # type: ignore[arg-type]
    assert caught.value.message
    return caught.value.reason


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def bomb_png(side: int) -> bytes:
    """A *valid* 1-bit PNG of side x side black pixels: tiny on disk, huge in memory."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)
    rows = b"".join(compressor.compress(row * 1000) for _ in range(side // 1000))
    pixels = rows + compressor.compress(row * (side % 1000)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", pixels)
        + png_chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


# ---------------------------------------------------------------- accepted images and modes
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_allowed_formats_decode_to_rgb(photo: Image.Image, fmt: str) -> None:
    decoded = decode_image(encode(photo, fmt))
    assert decoded.mode == "RGB"
    assert decoded.size == photo.size


def test_rgba_is_composited_onto_white() -> None:
    pixels = np.zeros((2, 3, 4), dtype=np.uint8)
    pixels[0, 0] = (0, 0, 0, 0)  # fully transparent black -> white
    pixels[0, 1] = (255, 0, 0, 255)  # opaque red stays red
    pixels[0, 2] = (0, 0, 255, 128)  # half-transparent blue -> light blue
    decoded = np.asarray(decode_image(encode(Image.fromarray(pixels, "RGBA"), "PNG")))
    assert decoded.shape == (2, 3, 3)
    assert tuple(decoded[0, 0]) == (255, 255, 255)
    assert tuple(decoded[0, 1]) == (255, 0, 0)
    red, green, blue = (int(v) for v in decoded[0, 2])
    assert blue == 255 and 120 <= red <= 135 and 120 <= green <= 135


def test_la_and_transparent_palette_are_flattened() -> None:
    la = Image.new("LA", (4, 4), (0, 0))
    assert np.asarray(decode_image(encode(la, "PNG"))).min() == 255
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([10, 20, 30] * 256)
    data = encode(palette, "PNG", transparency=0)
    assert np.asarray(decode_image(data)).min() == 255


def test_palette_without_transparency_keeps_colours() -> None:
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 10, 200, 30] + [0, 0, 0] * 254)
    assert tuple(np.asarray(decode_image(encode(palette, "PNG")))[0, 0]) == (10, 200, 30)


@pytest.mark.parametrize("mode", ["L", "1"])
def test_greyscale_becomes_rgb(mode: str) -> None:
    grey = Image.fromarray(np.tile(np.arange(0, 256, 16, dtype=np.uint8), (4, 1))).convert(mode)
    decoded = np.asarray(decode_image(encode(grey, "PNG")))
    assert decoded.shape == (4, 16, 3)
    assert (decoded[..., 0] == decoded[..., 1]).all() and (decoded[..., 1] == decoded[..., 2]).all()


def test_cmyk_jpeg_becomes_rgb() -> None:
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    decoded = np.asarray(decode_image(encode(cmyk, "JPEG", quality=95)))
    red, green, blue = decoded[4, 4].astype(int)
    assert red > 200 and green < 60 and blue < 60


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    values = np.array([[0, 257, 4096, 32768, 65535]], dtype=np.uint16)
    data = encode(Image.fromarray(values), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")  # really a 16-bit PNG
    decoded = np.asarray(decode_image(data))
    assert decoded[0, :, 0].tolist() == [0, 1, 16, 128, 255]


def test_dark_sixteen_bit_image_keeps_its_gradient() -> None:
    gradient = np.linspace(0, 4095, 64, dtype=np.uint16).reshape(8, 8)
    decoded = np.asarray(decode_image(encode(Image.fromarray(gradient), "PNG")))[..., 0]
    assert decoded.max() == 16  # clipping to 0..255 would give 255
    assert len(np.unique(decoded)) > 10


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 10, 10))  # red block at the top-left
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # "rotate 90 degrees clockwise to display"
    data = encode(image, "JPEG", exif=exif.tobytes(), quality=95)
    decoded = decode_image(data)
    assert decoded.size == (20, 40)
    top_right = np.asarray(decoded)[2:8, 12:18].mean(axis=(0, 1))
    assert top_right[0] > 200 and top_right[2] < 60
    assert "exif" not in decoded.info


def test_malformed_exif_is_ignored(photo: Image.Image) -> None:
    data = encode(photo, "JPEG", exif=b"Exif\x00\x00garbage-that-is-not-tiff")
    assert decode_image(data).size == photo.size


def test_animated_webp_yields_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    assert tuple(np.asarray(decode_image(data))[0, 0]) == (255, 0, 0)


# ---------------------------------------------------------------- rejections
def test_empty_data() -> None:
    assert rejection(b"") == "empty"


def test_too_large_bytes(photo: Image.Image) -> None:
    data = encode(photo, "PNG")
    assert rejection(data, max_bytes=len(data) - 1) == "too_large_bytes"
    assert decode_image(data, max_bytes=len(data)).size == photo.size


def test_random_bytes_are_not_an_image() -> None:
    assert rejection(random.Random(7).randbytes(4096)) == "not_an_image"
    assert rejection(b"hello, this is plain text") == "not_an_image"


@pytest.mark.parametrize(
    "data",
    [
        encode(Image.new("RGB", (4, 4)), "GIF"),
        encode(Image.new("RGB", (4, 4)), "BMP"),
        encode(Image.new("RGB", (4, 4)), "TIFF"),
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n",
    ],
    ids=["gif", "bmp", "tiff", "pdf"],
)
def test_other_formats_are_unsupported(data: bytes) -> None:
    assert rejection(data) == "unsupported_type"


def test_truncated_jpeg_is_corrupt(photo: Image.Image) -> None:
    data = encode(photo, "JPEG")
    assert not ImageFile.LOAD_TRUNCATED_IMAGES
    assert rejection(data[: len(data) // 2]) == "corrupt"


def test_truncated_png_is_corrupt(photo: Image.Image) -> None:
    data = encode(photo, "PNG")
    assert rejection(data[: len(data) // 2]) == "corrupt"
    assert rejection(data[:20]) == "corrupt"  # magic intact, header cut


def test_decompression_bomb_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    data = bomb_png(20_000)
    assert len(data) < 200_000  # 400 megapixels in a few kilobytes

    def no_decoding(self: Image.Image) -> None:
        raise AssertionError("pixels must not be decoded for an oversized image")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    assert rejection(data) == "too_many_pixels"


def test_pillow_bomb_error_maps_to_too_many_pixels() -> None:
    # With our own limit lifted, Pillow's DecompressionBombError (> 2x MAX_IMAGE_PIXELS) trips.
    assert rejection(bomb_png(20_000), max_pixels=10**12) == "too_many_pixels"


def test_pixel_limit_is_configurable(photo: Image.Image) -> None:
    data = encode(photo, "PNG")
    assert rejection(data, max_pixels=512 * 512 - 1) == "too_many_pixels"
    assert decode_image(data, max_pixels=512 * 512).size == (512, 512)


def test_image_rejected_is_a_value_error() -> None:
    error = ImageRejected("corrupt", "broken")
    assert isinstance(error, ValueError)
    assert (error.reason, error.message) == ("corrupt", "broken")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_only_raise_image_rejected(data: bytes) -> None:
    try:
        assert decode_image(data).mode == "RGB"
    except ImageRejected:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fmt=st.sampled_from(["JPEG", "PNG", "WEBP"]),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=8),
    cut=st.integers(0, 10**6),
)
def test_damaged_images_only_raise_image_rejected(
    fmt: str, flips: list[tuple[int, int]], cut: int
) -> None:
    gradient = np.arange(48 * 32 * 3, dtype=np.uint32).reshape(32, 48, 3) % 251
    damaged = bytearray(encode(Image.fromarray(gradient.astype(np.uint8)), fmt))
    for position, mask in flips:
        damaged[position % len(damaged)] ^= mask
    try:
        decoded = decode_image(bytes(damaged[: max(1, cut % (len(damaged) + 1))]))
    except ImageRejected:
        return
    assert decoded.mode == "RGB"


# ---------------------------------------------------------------- re-encoding and scaling
def test_to_jpeg_strips_metadata(photo: Image.Image) -> None:
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"  # Make
    exif[ORIENTATION] = 1
    tagged = photo.copy()
    tagged.info["exif"] = exif.tobytes()
    tagged.info["icc_profile"] = b"not really a profile"
    data = to_jpeg(tagged)
    assert b"Exif\x00\x00" not in data and b"CameraMaker" not in data
    reopened = Image.open(io.BytesIO(data))
    assert reopened.format == "JPEG" and reopened.size == photo.size
    assert not reopened.getexif()
    assert "exif" not in reopened.info and "icc_profile" not in reopened.info


def test_to_jpeg_accepts_rgba_and_validates_quality() -> None:
    data = to_jpeg(Image.new("RGBA", (5, 5), (0, 0, 0, 0)))
    assert np.asarray(decode_image(data)).min() > 240
    with pytest.raises(ValueError):
        to_jpeg(Image.new("RGB", (5, 5)), quality=0)


def test_downscale_limits_the_long_side() -> None:
    image = Image.new("RGB", (1600, 900))
    small, scale = downscale(image, 800)
    assert small.size == (800, 450) and scale == pytest.approx(0.5)
    tall, scale = downscale(Image.new("RGB", (300, 1200)), 800)
    assert tall.size == (200, 800) and scale == pytest.approx(2 / 3)


def test_downscale_never_enlarges() -> None:
    image = Image.new("RGB", (640, 480))
    same, scale = downscale(image, 800)
    assert same is image and scale == 1.0
    with pytest.raises(ValueError):
        downscale(image, 0)


# ---------------------------------------------------------------- portraits (issue 13)
@pytest.mark.parametrize(
    ("mode", "make"),
    [
        ("1", lambda: bomb_png(3000)),  # bilevel, 9 MP: within the size limits
        ("I;16", lambda: encode(Image.fromarray(np.zeros((8, 8), np.uint16)), "PNG")),
    ],
)
def test_portrait_modes_refuse_exotic_modes_before_decoding(
    monkeypatch: pytest.MonkeyPatch, mode: str, make: object
) -> None:
    data = make()  # type: ignore[operator]
    assert Image.open(io.BytesIO(data)).mode.startswith(mode[0])

    def no_decoding(self: Image.Image) -> None:
        raise AssertionError("pixels must not be decoded for a refused mode")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    assert rejection(data, modes=PORTRAIT_MODES) == "unsupported_mode"


def test_side_limit_is_checked_on_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(Image.new("RGB", (4001, 10)), "PNG")
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: None)
    assert rejection(data, max_side=4000) == "too_many_pixels"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_working_side_decodes_between_one_and_two_times_it(fmt: str) -> None:
    big = Image.fromarray(np.full((2400, 3600, 3), 90, np.uint8))
    decoded = decode_image(encode(big, fmt), working_side=800)
    assert 800 <= max(decoded.size) < 1600 and decoded.mode == "RGB"
    assert decoded.size[0] > decoded.size[1]  # the aspect is kept
    small = Image.new("RGB", (300, 200), (1, 2, 3))
    assert decode_image(encode(small, fmt), working_side=800).size == (300, 200)  # no upscale


def test_working_side_keeps_exif_orientation() -> None:
    image = Image.new("RGB", (3200, 1600), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 800, 800))  # red block at the top-left
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # "rotate 90 degrees clockwise to display"
    data = encode(image, "JPEG", exif=exif.tobytes(), quality=95)
    decoded = decode_image(data, working_side=400)
    assert decoded.size == (200, 400)  # drafted to 1/8, then turned upright
    top_right = np.asarray(decoded)[10:50, 150:190].mean(axis=(0, 1))
    assert top_right[0] > 200 and top_right[2] < 60
