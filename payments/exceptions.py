"""Errors of the payments app; messages are meant for the person who caused them."""


class PaymentError(Exception):
    pass


class ProviderUnavailable(PaymentError):
    """The provider is not configured, or unknown."""


class ProviderError(PaymentError):
    """The provider refused or could not be reached (a network error, a 5xx)."""


class SignatureInvalid(PaymentError):
    """A webhook whose signature is missing, forged, tampered with or too old."""


class RefundRefused(PaymentError):
    pass


class NotPayable(PaymentError):
    """The order cannot be paid (not awaiting payment)."""
