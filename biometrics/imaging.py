"""Safe decoding of untrusted image bytes into 8-bit RGB, plus re-encoding and downscaling.

Every image that enters Borderpost (desk camera, upload, sync) should pass through
:func:`decode_image`. It enforces an allow-list of formats (JPEG, PNG, WebP) identified by
their magic bytes, refuses oversized payloads and decompression bombs *before* any pixel is
decoded, and normalises orientation and colour mode so downstream code only sees RGB.

Memory is bounded by what the header declares, checked before any pixel is decoded: the
pixel count (``max_pixels``, 12 MP by default), each side (``max_side``) and, for portraits,
the colour mode (``modes``: :data:`PORTRAIT_MODES` refuses bilevel, 16-bit, float and other
exotic modes, which no camera produces and which cost far more in memory than on disk). With
``working_side`` the image is decoded only as large as the caller needs: JPEG in libjpeg's
draft mode (scaled by 1/2, 1/4 or 1/8 while decoding), other formats reduced right after
decoding, so every later step (orientation, mode conversion, re-encoding, face analysis)
works on an image whose long side is between ``working_side`` and twice that.
"""

from __future__ import annotations

import io
import zlib

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "ALLOWED_FORMATS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_SIDE",
    "PORTRAIT_MODES",
    "ImageRejected",
    "decode_image",
    "downscale",
    "to_jpeg",
]

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_PIXELS = 12_000_000
DEFAULT_MAX_SIDE = 4000
# Colour modes a portrait may have (what cameras, phones and scanners write); Pillow's other
# modes ("1" bilevel, "I", "I;16*", "F", "LAB", "HSV", ...) are refused before decoding.
PORTRAIT_MODES: frozenset[str] = frozenset({"L", "LA", "P", "PA", "RGB", "RGBA", "CMYK"})
# EXIF Orientation value -> the transpose that makes the image upright (as ImageOps does).
_ORIENTATION_TAG = 0x0112
_UPRIGHT: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
ALLOWED_FORMATS: frozenset[str] = frozenset({"JPEG", "PNG", "WEBP"})

# Magic numbers of formats we accept: Pillow format name -> predicate on the first bytes.
_ACCEPTED_MAGIC: tuple[tuple[str, bytes, int], ...] = (
    ("JPEG", b"\xff\xd8\xff", 0),
    ("PNG", b"\x89PNG\r\n\x1a\n", 0),
    ("WEBP", b"WEBP", 8),  # "RIFF" <size:4> "WEBP"
)
# Well-known formats we recognise but refuse, so the caller gets a precise reason.
_KNOWN_UNSUPPORTED: tuple[tuple[str, bytes, int], ...] = (
    ("GIF", b"GIF87a", 0),
    ("GIF", b"GIF89a", 0),
    ("TIFF", b"II*\x00", 0),
    ("TIFF", b"MM\x00*", 0),
    ("BMP", b"BM", 0),
    ("PDF", b"%PDF", 0),
    ("HEIF/AVIF", b"ftyp", 4),
    ("JPEG 2000", b"\x00\x00\x00\x0cjP  ", 0),
    ("ICO", b"\x00\x00\x01\x00", 0),
    ("PSD", b"8BPS", 0),
    ("SVG/XML", b"<?xml", 0),
    ("SVG", b"<svg", 0),
)
# Errors Pillow raises on damaged data while parsing headers or decoding pixels.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    zlib.error,
)
_WHITE = (255, 255, 255)


class ImageRejected(ValueError):
    """An image was refused; ``reason`` is a stable machine-readable code.

    Codes: ``empty``, ``too_large_bytes``, ``too_many_pixels`` (pixel count or a side over
    its limit), ``not_an_image``, ``unsupported_type``, ``unsupported_mode``, ``corrupt``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def _sniff(data: bytes) -> str:
    """Return the allowed Pillow format name for ``data`` or raise ImageRejected."""
    for name, magic, offset in _ACCEPTED_MAGIC:
        if data[offset : offset + len(magic)] == magic:
            if name == "WEBP" and not data.startswith(b"RIFF"):
                continue
            return name
    for name, magic, offset in _KNOWN_UNSUPPORTED:
        if data[offset : offset + len(magic)] == magic:
            allowed = ", ".join(sorted(ALLOWED_FORMATS))
            raise ImageRejected("unsupported_type", f"{name} images are not accepted ({allowed})")
    raise ImageRejected("not_an_image", "the data is not a recognised image")


def _check_limits(data: bytes, max_bytes: int) -> None:
    """Refuse empty and oversized payloads before looking inside them."""
    if not data:
        raise ImageRejected("empty", "no image data received")
    if len(data) > max_bytes:
        raise ImageRejected(
            "too_large_bytes", f"image is {len(data)} bytes; the limit is {max_bytes} bytes"
        )


def _open_lazily(data: bytes, fmt: str) -> Image.Image:
    """Parse only the header of ``data`` with the single Pillow plugin for ``fmt``."""
    try:
        return Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:
        raise ImageRejected("too_many_pixels", str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise ImageRejected("corrupt", f"damaged {fmt} header") from exc
    except _DECODE_ERRORS as exc:
        raise ImageRejected("corrupt", f"damaged {fmt} header: {exc}") from exc


def _check_pixels(image: Image.Image, max_pixels: int, max_side: int | None = None) -> None:
    """Refuse images whose header-declared size is zero or exceeds ``max_pixels``/``max_side``."""
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageRejected("corrupt", f"invalid image size {width}x{height}")
    if width * height > max_pixels:
        raise ImageRejected(
            "too_many_pixels",
            f"image declares {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
        )
    if max_side is not None and max(width, height) > max_side:
        raise ImageRejected(
            "too_many_pixels",
            f"image declares {width}x{height} pixels; each side may be at most {max_side}",
        )


def _check_mode(image: Image.Image, modes: frozenset[str] | None) -> None:
    """Refuse a header-declared colour mode outside ``modes`` (None accepts any)."""
    if modes is None or image.mode in modes:
        return
    kind = "bilevel (1-bit)" if image.mode == "1" else f"colour mode {image.mode}"
    raise ImageRejected(
        "unsupported_mode",
        f"{kind} images are not accepted; send an 8-bit greyscale or colour photo",
    )


def _orientation(image: Image.Image) -> int:
    """The EXIF Orientation value (1 = upright) of a loaded image; malformed EXIF is 1."""
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except _DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) else 1


def _draft(image: Image.Image, working_side: int) -> None:
    """Let libjpeg decode a JPEG scaled down (1/2..1/8), keeping the long side >= working_side."""
    if image.format != "JPEG":
        return
    width, height = image.size
    longest = max(width, height)
    if longest < 2 * working_side:
        return
    factor = longest / working_side
    wanted = (max(1, int(width / factor)), max(1, int(height / factor)))
    try:
        image.draft("RGB", wanted)
    except _DECODE_ERRORS as exc:
        raise ImageRejected("corrupt", f"damaged JPEG header: {exc}") from exc


def _reduce(image: Image.Image, working_side: int) -> Image.Image:
    """Shrink a decoded image by a whole factor, keeping its long side >= ``working_side``."""
    factor = max(image.size) // working_side
    if factor < 2:
        return image
    if image.mode in ("P", "PA"):  # a palette cannot be averaged: expand it first
        image = image.convert("RGBA")
    try:
        return image.reduce(factor)
    except ValueError:  # a mode Pillow cannot reduce (e.g. 16-bit): normalise first
        return _to_rgb(image).reduce(factor)


def _load_pixels(image: Image.Image) -> Image.Image:
    """Decode the pixel data, mapping truncation and corruption to ``corrupt``."""
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise ImageRejected("too_many_pixels", str(exc)) from exc
    except _DECODE_ERRORS as exc:
        raise ImageRejected("corrupt", f"image data could not be decoded: {exc}") from exc
    return image


def _apply_orientation(image: Image.Image) -> Image.Image:
    """Rotate/flip according to the EXIF Orientation tag; ignore malformed EXIF."""
    try:
        transposed = ImageOps.exif_transpose(image)
    except _DECODE_ERRORS:
        return image
    return transposed if transposed is not None else image


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """Composite an image with transparency onto a white background."""
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, _WHITE)
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _sixteen_bit_to_rgb(image: Image.Image) -> Image.Image:
    """Map 16-bit (or 32-bit integer) grayscale to 8-bit RGB by nominal range, not clipping."""
    wide = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
    eight = ((wide * 255 + 32767) // 65535).astype(np.uint8)
    return Image.fromarray(eight).convert("RGB")


def _to_rgb(image: Image.Image) -> Image.Image:
    """Normalise any decoded mode to 8-bit RGB."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _flatten_alpha(image)
    if mode == "P":
        palette = image.palette  # always set on a decoded "P" image
        has_alpha = "transparency" in image.info or (palette is not None and palette.mode == "RGBA")
        return _flatten_alpha(image) if has_alpha else image.convert("RGB")
    if mode.startswith("I;16") or mode == "I":
        return _sixteen_bit_to_rgb(image)
    if mode == "F":
        values = np.clip(np.asarray(image), 0.0, 255.0).round().astype(np.uint8)
        return Image.fromarray(values).convert("RGB")
    return image.convert("RGB")


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    method = _UPRIGHT.get(orientation)
    return image if method is None else image.transpose(method)


def decode_image(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int | None = None,
    modes: frozenset[str] | None = None,
    working_side: int | None = None,
) -> Image.Image:
    """Decode untrusted ``data`` into an upright 8-bit RGB image.

    Order of checks: size of the payload, magic bytes against the allow-list (JPEG, PNG,
    WebP), header-declared pixel count, sides and colour mode (no pixels decoded yet), then
    decode, EXIF orientation and mode normalisation (alpha composited onto white, palettes
    expanded, 16-bit grey scaled from 0..65535 to 0..255). Animated images yield their
    first frame. With ``working_side`` the result's long side is between ``working_side``
    and twice that (never upscaled): JPEG is decoded in draft mode, other formats reduced.

    Raises:
        ImageRejected: with ``reason`` set to one of the documented codes.
    """
    if working_side is not None and working_side <= 0:
        raise ValueError("working_side must be positive")
    _check_limits(data, max_bytes)
    fmt = _sniff(data)
    image = _open_lazily(data, fmt)
    try:
        _check_pixels(image, max_pixels, max_side)
        _check_mode(image, modes)
        if working_side is None:
            _load_pixels(image)
            working = _apply_orientation(image)
        else:
            _draft(image, working_side)
            _load_pixels(image)
            orientation = _orientation(image)
            working = _upright(_reduce(image, working_side), orientation)
        rgb = _to_rgb(working)
        if rgb is image:
            rgb = image.copy()
    finally:
        image.close()
    rgb.info.clear()
    return rgb


def to_jpeg(image: Image.Image, quality: int = 90) -> bytes:
    """Re-encode ``image`` as a baseline JPEG with no EXIF, ICC profile or other metadata."""
    if not 1 <= quality <= 95:
        raise ValueError("quality must be between 1 and 95")
    rgb = image if image.mode == "RGB" else _to_rgb(image)
    clean = Image.frombytes("RGB", rgb.size, rgb.tobytes())
    buffer = io.BytesIO()
    clean.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def downscale(image: Image.Image, max_side: int = 800) -> tuple[Image.Image, float]:
    """Shrink ``image`` so its longer side is at most ``max_side`` pixels.

    Returns the (possibly unchanged, never upscaled) image and the scale factor applied:
    a point ``(x, y)`` of the input maps to ``(x * scale, y * scale)`` in the output.
    """
    if max_side <= 0:
        raise ValueError("max_side must be positive")
    width, height = image.size
    longest = max(width, height)
    if longest <= max_side:
        return image, 1.0
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0), scale
