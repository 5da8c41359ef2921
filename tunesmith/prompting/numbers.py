"""Numbers as people write them in prompts: digits, English words ("twenty-four") and Chinese numerals ("一百二十")."""

from __future__ import annotations

import re

_UNIT_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
               "seventeen eighteen nineteen")
_UNITS = _UNIT_WORDS.split()
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_UNIT_VALUE = {w: i for i, w in enumerate(_UNITS)}
_WORD_BELOW_100 = (r"(?:" + "|".join(_TENS) + r")(?:[\s-](?:" + "|".join(_UNITS[1:10]) + r"))?|"
                   + "|".join(sorted(_UNITS, key=len, reverse=True)))
# An English number: digits, or words up to "two hundred and ninety-nine" ("a hundred", "one hundred twenty").
EN_NUMBER = (r"\d+(?:\.\d+)?|(?:(?:a|one|two)[\s-]hundred(?:[\s-](?:and[\s-])?(?:" + _WORD_BELOW_100 + r"))?)|"
             + _WORD_BELOW_100)

_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
              "九": 9}
# A Chinese number: digits or numerals up to the hundreds ("十二", "二十四", "一百", "一百二十", "一百二").
ZH_NUMBER = r"\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百]+"


def parse_en(text: str) -> float:
    """The value of an English number matched by :data:`EN_NUMBER`."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    total = 0
    parts = [p for p in re.split(r"[\s-]+", text) if p != "and"]
    if "hundred" in parts:
        index = parts.index("hundred")
        total = 100 * (1 if parts[0] in ("a", "one") else _UNIT_VALUE.get(parts[0], 1))
        parts = parts[index + 1:]
    if parts:
        total += _TENS.get(parts[0], 0) + (_UNIT_VALUE.get(parts[-1], 0) if len(parts) > 1 else 0)
        if parts[0] in _UNIT_VALUE and len(parts) == 1:
            total += _UNIT_VALUE[parts[0]]
    return float(total)


def parse_zh(text: str) -> float | None:
    """The value of a Chinese number matched by :data:`ZH_NUMBER`; None if the numerals do not form a number."""
    text = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    total, digit, seen_hundred = 0, None, False
    for i, char in enumerate(text):
        if char in _ZH_DIGITS:
            if digit is not None:
                return None  # two digits in a row ("一二") is not a number
            digit = _ZH_DIGITS[char]
        elif char == "百":
            total += 100 * (digit if digit is not None else 1)
            digit, seen_hundred = None, True
        elif char == "十":
            total += 10 * (digit if digit is not None else 1)
            digit = None
            if i == len(text) - 1:
                return float(total)
        else:
            return None
    if digit is not None:
        # "一百二" means 120: a lone digit after the hundreds counts tens
        total += digit * 10 if seen_hundred and text[-2] == "百" else digit
    return float(total)
