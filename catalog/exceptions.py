"""Errors raised by the catalog's services."""


class CatalogError(Exception):
    """Base class for catalog errors; the message is meant for people."""


class ImageProcessingError(CatalogError):
    """An uploaded image could not be read or resized."""
