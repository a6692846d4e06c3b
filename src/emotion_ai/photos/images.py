"""Photos as they arrive: PNG or JPEG bytes of any size, colour or gray, EXIF orientation honoured,
the pixel budget checked from the header before anything is decoded."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class PhotoError(ValueError):
    """Bytes that are not a readable PNG or JPEG photo."""


def read_photo(data: bytes, check_size: Callable[[int, int], None] | None = None) -> np.ndarray:
    """The photo as RGB uint8 (h, w, 3), upright. `check_size(width, height)` sees the header's
    size first and raises to refuse it (an image bomb then costs nothing)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if check_size is not None:
                check_size(*image.size)
            upright = ImageOps.exif_transpose(image)
            return np.asarray(upright.convert("RGB"))
    except Image.DecompressionBombError:
        raise
    except UnidentifiedImageError as error:
        raise PhotoError("not a PNG or JPEG photo (no image format recognised)") from error
    except (OSError, SyntaxError) as error:
        raise PhotoError(f"not a readable PNG or JPEG photo ({error})") from error


def gray(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).convert("L"))
