"""Validation of uploaded product images (Pillow opens and checks every file)."""

from django.core.exceptions import ValidationError
from django.core.files import File
from PIL import Image, UnidentifiedImageError

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}


def validate_image_file(file: File) -> None:
    """Refuse files that are too large, not images, or in a format the shop does not serve."""
    if file.size is not None and file.size > MAX_IMAGE_BYTES:
        raise ValidationError("The image is larger than 10 MB.", code="image_too_large")
    position = file.tell() if hasattr(file, "tell") else None
    try:
        file.seek(0)
        with Image.open(file) as picture:
            image_format = picture.format
            width, height = picture.size
            picture.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValidationError("The file is not a valid image.", code="invalid_image") from exc
    finally:
        if position is not None:
            file.seek(position)
    if image_format not in ALLOWED_FORMATS:
        raise ValidationError(
            "Upload a JPEG, PNG, WebP or GIF image.", code="image_format_not_allowed"
        )
    if width * height > MAX_IMAGE_PIXELS:
        raise ValidationError("The image has too many pixels.", code="image_too_many_pixels")
