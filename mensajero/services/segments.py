"""SMS segment counting (3GPP TS 23.038): what a text costs on the SMS channel.

A text made only of GSM 03.38 characters goes out in the 7-bit alphabet: 160
characters in one segment, 153 per segment when it needs several (the rest of
each segment carries the concatenation header). The extension table's
characters (``^{}\\[~]|€`` and form feed) take two septets each. Any other
character switches the whole text to UCS-2: 70 code units in one segment, 67
per segment otherwise; characters outside the Basic Multilingual Plane
(emoji) take two code units. Carriers never split an escape sequence or a
surrogate pair across segments, so parts are packed whole characters at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


class SmsEncoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True, slots=True)
class SegmentCount:
    encoding: SmsEncoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def is_gsm7(text: str) -> bool:
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text)


def _pack(weights: list[int], part_capacity: int) -> int:
    segments, used = 1, 0
    for weight in weights:
        if used + weight > part_capacity:
            segments += 1
            used = 0
        used += weight
    return segments


def count_segments(text: str) -> SegmentCount:
    """How many SMS segments ``text`` takes (0 for an empty text)."""
    if is_gsm7(text):
        encoding, single, part = SmsEncoding.GSM7, GSM7_SINGLE, GSM7_PART
        weights = [2 if char in GSM7_EXTENSION else 1 for char in text]
    else:
        encoding, single, part = SmsEncoding.UCS2, UCS2_SINGLE, UCS2_PART
        weights = [2 if ord(char) > 0xFFFF else 1 for char in text]
    units = sum(weights)
    if units == 0:
        return SegmentCount(encoding, 0, 0)
    if units <= single:
        return SegmentCount(encoding, units, 1)
    return SegmentCount(encoding, units, _pack(weights, part))
