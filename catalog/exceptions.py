"""Errors raised by the catalog's services."""


class CatalogError(Exception):
    """Base class for catalog errors; the message is meant for people."""


class ImageProcessingError(CatalogError):
    """An uploaded image could not be read or resized."""


class SaleError(CatalogError):
    """Sale units could not be taken; the message says why, for the customer."""


class SaleSoldOut(SaleError):
    def __init__(self, message: str, *, sale_item_id: int) -> None:
        super().__init__(message)
        self.sale_item_id = sale_item_id


class SaleLimitReached(SaleError):
    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class SaleNotLive(SaleError):
    """The sale has ended (or was switched off) since its price was shown."""
