"""Order numbers people can read out on the phone: 'NW-' and eight characters without the
look-alikes (0/O, 1/I/L, U). 30^8 (6.6e11) numbers make a collision rare; the unique constraint
catches one and placement retries with a new number."""

import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
PREFIX = "NW"


def order_number_generate() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(8))
    return f"{PREFIX}-{body[:4]}-{body[4:]}"
