"""The built-in redaction rules (issue 17, point 2): what each one finds in a string.

Each rule is a finder: ``spans(text)`` returns the ``(start, end)`` of what it redacts, in order.
Shapes, kept precise (what they leave alone is in brackets):

- ``email``: a local part (1-64 of ``\\w . % + -``, the whole run of those characters before the
  ``@``) and a domain of 2-9 labels ending in a 2-63 letter TLD [``user@localhost``, ``@mention``].
- ``phone``: ``+`` and 7-15 digits (``+1 (415) 555-2671``, ``+4915123456789``); ``(415) 555-2671``;
  North American ``415-555-2671``, ``415.555.2671``, ``415 555 2671`` (``1-`` prefix allowed);
  ``555-2671``; a national number with a trunk ``0`` and separators, 9-15 digits
  (``020 7946 0958``, ``01 42 68 53 00``, ``030-12345678``) [digits without a separator or ``+``:
  timestamps, ids, ``1733500000000``; dates; IPv4 shapes; parts of UUIDs, versions, decimals].
- ``credit_card``: 13-19 digits, optionally split by single spaces or dashes, starting with 2-6
  (the major networks), that pass the Luhn check; when the whole run fails, its longest prefix
  ending at a separator that passes is taken (a card followed by its CVV or expiry)
  [Luhn-invalid numbers, millisecond timestamps (they start with 1)].
- ``ip``: IPv4 with octets up to 255, and IPv6 as ``ipaddress`` accepts it (full, ``::``
  compressed, IPv4-mapped), containing a digit or written in full [``999.1.1.1``, ``10:30:00``,
  ``a::b``, MAC addresses].
- ``api_key``: OpenAI/Anthropic ``sk-...``, ``sk-proj-...``, ``sk-ant-...``; Stripe
  ``sk_live_``/``rk_live_``/``_test_``; AWS ``AKIA``/``ASIA`` + 16; Google ``AIza`` + 35; GitHub
  ``ghp_``/``gho_``/``ghu_``/``ghs_``/``ghr_`` + 36 and ``github_pat_``; Slack ``xox?-``; tracehive
  and HoneyHive ``hh_`` keys; JWTs (``eyJ...eyJ...sig``); ``Bearer <token>`` (the word included);
  PEM private key blocks. The loose shapes (``sk-``, ``xox``, ``hh_`` other than tracehive's
  exact one, ``Bearer``) need a digit and a letter in the token, so prose is left alone.

Digits are ASCII; ``\\w`` is Unicode (an address like ``josé@exemple.fr`` is found). A rule's
finder scans left to right; where a candidate is rejected by its check (Luhn, digit count, octet
range, ``ipaddress``) the scan goes on from the next character, so a rejected candidate never
hides a real match that starts inside it. Every pattern here is linear in the text: no nested
unbounded repeat, bounded alternatives (``tests/unit/test_redaction.py`` times them on 16 KiB of
adversarial text).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

BUILTIN_NAMES = ("email", "phone", "credit_card", "ip", "api_key")

Span = tuple[int, int]


class RedactionRuleError(ValueError):
    """A rule that cannot be set: the message is one line that names the rule."""


# ------------------------------------------------------------------------------------------------
# Finders
# ------------------------------------------------------------------------------------------------


def _scan(rx: re.Pattern[str], check: Callable[[re.Match[str]], Span | None] | None, text: str) -> list[Span]:
    """Every match of ``rx`` that ``check`` accepts (it may shorten the span); after a rejection
    the scan resumes one character after the candidate's start, not after its end."""
    if check is None:
        return [m.span() for m in rx.finditer(text)]
    spans: list[Span] = []
    pos = 0
    search = rx.search
    while True:
        m = search(text, pos)
        if m is None:
            return spans
        span = check(m)
        if span is None:
            pos = m.start() + 1
        else:
            spans.append(span)
            pos = span[1] if span[1] > m.start() else m.start() + 1


class Finder:
    """One rule: a compiled pattern and an optional check of each candidate."""

    __slots__ = ("check", "name", "rx")

    def __init__(self, name: str, rx: re.Pattern[str], check: Callable[[re.Match[str]], Span | None] | None) -> None:
        self.name = name
        self.rx = rx
        self.check = check

    def spans(self, text: str) -> list[Span]:
        return _scan(self.rx, self.check, text)


# --- email -------------------------------------------------------------------------------------

# The local part, read backwards from the "@": the whole run of local characters must be 1-64 long
# (65 read to tell a longer run apart).
_LOCAL_REVERSED = re.compile(r"[\w.%+-]{1,65}")
_DOMAIN = re.compile(r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.){1,8}[^\W\d_]{2,63}(?![\w-]|\.[^\W_])")


class EmailFinder:
    """Anchored on each ``@`` (found by ``str.find``, so text without one costs one scan in C)."""

    __slots__ = ("name",)

    def __init__(self) -> None:
        self.name = "email"

    def spans(self, text: str) -> list[Span]:
        spans: list[Span] = []
        at = text.find("@")
        while at != -1:
            lo = at - 65 if at > 65 else 0
            local = _LOCAL_REVERSED.match(text[lo:at][::-1])
            if local is not None and local.end() <= 64:
                domain = _DOMAIN.match(text, at + 1)
                if domain is not None:
                    spans.append((at - local.end(), domain.end()))
                    at = text.find("@", domain.end())
                    continue
            at = text.find("@", at + 1)
        return spans


# --- phone -------------------------------------------------------------------------------------

# The first character is matched by a class (so the regex engine skips to candidates in C), then
# the branches say what may follow it.
_PHONE = re.compile(
    r"""[0-9+(](?<![\w+.-].)
    (?:
        (?<=\+)[1-9][0-9]*(?:[ .-]?\([0-9]{1,5}\)[ .-]?[0-9]+)?(?:[ .-][0-9]+)*     # +CC ...
      | (?<=\()[0-9]{2,5}\)[ .-]?[0-9]{2,8}(?:[ .-][0-9]{2,5}){0,3}                  # (415) 555-2671
      | (?<=1)[ .-][2-9][0-9]{2}[ .-][0-9]{3}[ .-][0-9]{4}                           # 1-800-555-0199
      | (?<=[2-9])[0-9]{2}[ .-][0-9]{3}[ .-][0-9]{4}                                 # 415 555 2671
      | (?<=[2-9])[0-9]{2}-[0-9]{4}                                                  # 555-2671
      | (?<=0)[0-9]{1,4}(?:[ .-][0-9]{2,8}){1,5}                                     # 020 7946 0958
    )
    (?!\w|[.-][0-9])""",
    re.VERBOSE,
)
# A dotted quad of 1-3 digit groups is an IPv4 shape, never a phone number.
_IPV4_SHAPE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}\Z")


def _phone_check(m: re.Match[str]) -> Span | None:
    text = m.group()
    digits = sum(c.isdigit() for c in text)
    if text[0] == "0":
        ok = 9 <= digits <= 15
    else:
        ok = 7 <= digits <= 15
    if not ok or _IPV4_SHAPE.match(text):
        return None
    return m.span()


# --- credit_card -------------------------------------------------------------------------------

_CARD = re.compile(r"[2-6](?<![\w.-].)[0-9](?:[ -]?[0-9]){11,17}(?!\w|\.[0-9])")


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a string of ASCII digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i & 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_check(m: re.Match[str]) -> Span | None:
    text = m.group()
    digits = text.replace(" ", "").replace("-", "")
    if luhn_ok(digits):
        return m.span()
    # The longest prefix that ends before a separator, 13 digits or more, and passes.
    for cut in range(len(text) - 1, 0, -1):
        if text[cut] in " -":
            prefix = text[:cut].replace(" ", "").replace("-", "")
            if len(prefix) < 13:
                break
            if luhn_ok(prefix):
                return m.start(), m.start() + cut
    return None


# --- ip ----------------------------------------------------------------------------------------

_IPV4 = re.compile(r"[0-9](?<![\w.].)[0-9]{0,2}(?:\.[0-9]{1,3}){3}(?!\w|\.[0-9])")
# Matched from the start of the group before a ':' (IpFinder finds the colons with str.find: a
# class of hex digits as the first item would stop at every a-f of the text).
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}"
    r"(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{0,4})"
    r"(?![\w:]|\.[0-9])"
)
_HEX = frozenset("0123456789abcdefABCDEF")
_HAS_DIGIT = re.compile(r"[0-9]")
_HAS_LETTER = re.compile(r"[A-Za-z]")


def _ipv4_check(m: re.Match[str]) -> Span | None:
    return m.span() if all(int(part) <= 255 for part in m.group().split(".")) else None


def _ipv6_check(m: re.Match[str]) -> Span | None:
    text = m.group()
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return None
    if _HAS_DIGIT.search(text) is None and text.count(":") < 7:
        return None  # 'a::b', 'dead::beef' (C++, Rust paths)
    return m.span()


class IpFinder:
    __slots__ = ("name", "v4")

    def __init__(self) -> None:
        self.name = "ip"
        self.v4 = Finder("ip", _IPV4, _ipv4_check)

    def v6(self, text: str) -> list[Span]:
        spans: list[Span] = []
        colon = text.find(":")
        while colon != -1:
            start = colon
            while start > 0 and colon - start < 4 and text[start - 1] in _HEX:
                start -= 1
            m = _IPV6.match(text, start)
            span = _ipv6_check(m) if m is not None else None
            if span is not None:
                spans.append(span)
                colon = text.find(":", span[1])
            else:
                colon = text.find(":", colon + 1)
        return spans

    def spans(self, text: str) -> list[Span]:
        v4 = self.v4.spans(text)
        v6 = self.v6(text) if ":" in text else []
        if v4 and v6:
            return sorted(v4 + v6)
        return v4 or v6


# --- api_key -----------------------------------------------------------------------------------

# The first character is matched by a class, as for phone, then each branch says what follows it.
_API_KEY = re.compile(
    r"""[AghrsxeBb-](?<![\w-].)(?:
      (?P<strict>
          (?<=A)(?:KIA|SIA)[0-9A-Z]{16}
        | (?<=A)Iza[0-9A-Za-z_-]{35}
        | (?<=g)h[pousr]_[A-Za-z0-9]{36,255}
        | (?<=g)ithub_pat_[A-Za-z0-9_]{22,255}
        | (?<=h)h_(?:ingst_)?[A-Za-z0-9]{24}_[A-Za-z0-9_-]{64}
        | (?<=[sr])k_(?:live|test)_[A-Za-z0-9]{16,247}
        | (?<=e)yJ[A-Za-z0-9_-]{8,4096}\.eyJ[A-Za-z0-9_-]{8,4096}\.[A-Za-z0-9_-]{8,4096}
        | (?<=-)----BEGIN[A-Z ]{0,40}PRIVATE\ KEY-----[^\x00]{0,16384}?-----END[A-Z ]{0,40}PRIVATE\ KEY-----
      )
      | (?P<loose>
          (?<=s)k-[A-Za-z0-9_-]{20,256}
        | (?<=x)ox[abeoprs]-[A-Za-z0-9-]{10,256}
        | (?<=h)h_[A-Za-z0-9_-]{20,256}
        | (?<=[Bb])earer[ \t]+[A-Za-z0-9._~+/-]{20,4096}=*
      )
    )(?![\w-])""",
    re.VERBOSE,
)


def _api_key_check(m: re.Match[str]) -> Span | None:
    if m.group("loose") is not None:
        text = m.group()
        first = text[0]
        # The token after its prefix ('sk-', 'hh_', 'xoxb-', 'Bearer ').
        token = text.split(None, 1)[1] if first in "Bb" else text[5:] if first == "x" else text[3:]
        if _HAS_DIGIT.search(token) is None or _HAS_LETTER.search(token) is None:
            return None
    return m.span()


# --- what a string must contain for a rule other than email to match -----------------------------

# A necessary condition of phone, credit_card, ip and api_key, as one search. Every alternative
# starts with a literal character, so the engine skips to those characters in C and, at each one,
# tries only the alternatives that start with it: a number's first digit not inside a word or
# number and followed by six characters of a phone, card or IPv4 (after a '-', only an IPv4 may
# start: 'claude-3-5-sonnet-20241022' does not pass); two colons of an IPv6 ('::' or four in a
# row); the distinctive part of an api_key shape. Most strings fail it, and only a string that
# passes is given to the four finders (tests check that it holds for everything they find).
_TRIGGER_ALTERNATIVES = [
    *(rf"{d}(?:(?<![\w.-]{d})[0-9 ().-]{{6}}|(?<=-{d})[0-9]{{0,2}}\.[0-9])" for d in "0123456789"),
    r":(?::|[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:)",
    r"_(?:(?<=gh._)|(?<=pat_)|(?<=hh_)|(?<=k_))",
    r"-(?:(?<=sk-)|(?<=xox.-)|(?=----BEGIN))",
    r"A(?:KIA|SIA|Iza)",
    r"Bearer",
    r"bearer",
    r"J(?<=eyJ)",
]
TRIGGER = re.compile("|".join(_TRIGGER_ALTERNATIVES))


def builtin_finder(name: str) -> Finder | EmailFinder | IpFinder:
    if name == "email":
        return EmailFinder()
    if name == "phone":
        return Finder(name, _PHONE, _phone_check)
    if name == "credit_card":
        return Finder(name, _CARD, _card_check)
    if name == "ip":
        return IpFinder()
    if name == "api_key":
        return Finder(name, _API_KEY, _api_key_check)
    raise RedactionRuleError(f"unknown redaction rule {name!r}: use one of {', '.join(BUILTIN_NAMES)} or regex:PATTERN")
