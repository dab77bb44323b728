"""Errors raised by the orders app's services; every message is meant for the customer or the
merchant who caused it, and views map them to messages (pages) or 4xx (API)."""


class OrderError(Exception):
    """Base class: `str(error)` is a sentence a person can act on."""


# --- Cart ----------------------------------------------------------------------------------------


class CartError(OrderError):
    pass


class InvalidQuantity(CartError):
    pass


class VariantUnavailable(CartError):
    pass


class NotEnoughStock(CartError):
    def __init__(self, message: str, *, available: int) -> None:
        super().__init__(message)
        self.available = available


class CartLineNotFound(CartError):
    pass


class CartClosed(CartError):
    """The cart was turned into an order or merged into another one (e.g. in another tab)."""


# --- Checkout ------------------------------------------------------------------------------------


class CheckoutError(OrderError):
    pass


class CartEmpty(CheckoutError):
    pass


class CheckoutIncomplete(CheckoutError):
    """The review step was reached without the details it needs."""


class ShippingUnavailable(CheckoutError):
    pass


class VoucherInvalid(CheckoutError):
    pass


class PricesChanged(CheckoutError):
    """What the customer reviewed is no longer what they would pay."""


class OutOfStock(CheckoutError):
    """Some lines cannot be bought in the quantity asked; `lines` says which."""

    def __init__(self, message: str, *, lines: list[dict]) -> None:
        super().__init__(message)
        self.lines = lines


class SaleUnavailable(CheckoutError):
    """Sale units could not be had at placement: sold out, the customer's limit, or the sale
    ended since the review; the cart then shows the price valid now."""


# --- Orders --------------------------------------------------------------------------------------


class InvalidTransition(OrderError):
    def __init__(self, message: str, *, from_status: str, to_status: str) -> None:
        super().__init__(message)
        self.from_status = from_status
        self.to_status = to_status
