"""Passphrases for the patient's encrypted USB copy.

Generated from the OS's CSPRNG, never derived from patient data. 20 characters from a
31-letter alphabet without look-alikes (no 0/O, 1/I/L) give 99 bits of entropy, above the
80-bit floor; groups of four are easy to read aloud over a desk and to type.
"""

from __future__ import annotations

import math
import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
GROUPS, GROUP_LEN = 5, 4


def entropy_bits() -> float:
    """Entropy of one generated passphrase in bits."""
    return GROUPS * GROUP_LEN * math.log2(len(ALPHABET))


def new_passphrase() -> str:
    """A fresh passphrase like ``K7QM-4XRT-9HWC-PN3E-Z5YB``."""
    groups = ("".join(secrets.choice(ALPHABET) for _ in range(GROUP_LEN)) for _ in range(GROUPS))
    return "-".join(groups)
