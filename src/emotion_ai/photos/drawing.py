"""Answers drawn on the photo: a box per face, its 15 keypoints and its emotion with the
probability."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BOX_COLOUR, POINT_COLOUR, TEXT_COLOUR = (255, 196, 0), (0, 230, 255), (0, 0, 0)


def annotate(rgb: np.ndarray, faces: list[dict], labels: list[str] | None = None) -> Image.Image:
    """The photo with each face's box, keypoints and emotion drawn; `labels` (e.g. track ids) are
    put before the emotion."""
    image = Image.fromarray(rgb).convert("RGB")
    draw = ImageDraw.Draw(image)
    size = max(12, round(max(image.size) / 45))
    font = ImageFont.load_default(size=size)
    for index, face in enumerate(faces):
        x, y, width, height = face["box"]
        line = max(2, round(max(width, height) / 60))
        draw.rectangle([x, y, x + width, y + height], outline=BOX_COLOUR, width=line)
        radius = max(2, line)
        for px, py in face["keypoints"].values():
            draw.ellipse([px - radius, py - radius, px + radius, py + radius], fill=POINT_COLOUR)
        prefix = f"{labels[index]} " if labels else ""
        text = f"{prefix}{face['emotion']} {max(face['probabilities']):.2f}"
        left, top, right, bottom = draw.textbbox((x, y), text, font=font)
        top_y = max(0, y - (bottom - top) - 2 * line)
        draw.rectangle([x, top_y, x + (right - left) + 2 * line, y], fill=BOX_COLOUR)
        draw.text((x + line, top_y), text, fill=TEXT_COLOUR, font=font)
    return image
