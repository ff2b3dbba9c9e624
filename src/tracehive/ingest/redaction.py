"""Redaction at ingest (issue 17, point 2): a project's rules, applied to every event before it is
written anywhere.

Rules are specs, as set with ``tracehive projects update NAME --redact RULE``: the built-in
``email``, ``phone``, ``credit_card``, ``ip``, ``api_key`` (their shapes: ``redaction_rules``), or
``regex:PATTERN`` (Python ``re`` syntax, inline flags such as ``(?i)`` allowed). At most
``MAX_RULES`` rules, patterns of at most ``MAX_PATTERN_LENGTH`` characters.

- :func:`parse_rules` checks specs as they are set: unknown names, empty, invalid or
  empty-matching patterns, and patterns that can backtrack catastrophically
  (``redaction_check``: a structural check, then a measure in a child process) are refused with
  a :class:`RedactionRuleError` whose one-line message names the rule.
- :func:`redactor_for` is what ingest uses: the :class:`Redactor` of a tuple of (already checked)
  specs, built once per process and cached, ``None`` when there are none. It re-checks the
  structure (cheap) but does not measure again.
- :meth:`Redactor.apply` (an ``Event``) and :meth:`Redactor.apply_update` (an ``EventUpdate``)
  replace, in place, every match in every string value of ``inputs``, ``outputs``, ``metadata``,
  ``config``, ``feedback`` and ``user_properties``, at any depth of dicts and lists, by
  ``[REDACTED:<rule>]`` (``<rule>`` is the rule's name; ``regex`` for every ``regex:`` rule, so
  the marker never repeats a pattern), and return how many markers they wrote.

What is not redacted: dict keys (they are field names, and renaming them would change the
event's shape), values that are not strings (a card number sent as a JSON number), ``metrics``,
and the event's other fields (``event_name``, ``error``, ids).

Matches of different rules that overlap are merged into one marker (so no piece of either is
left), named after the match that starts first (the longer one at the same start, then the rule
listed first). Markers are written in one pass over the original string: a later rule never sees
an earlier rule's marker.

Cost: no rules, no work (:func:`redactor_for` gives ``None``). With rules, a string shorter than
the shortest possible match is skipped; ``email`` runs only on strings that contain an ``@``;
``phone``, ``credit_card``, ``ip`` and ``api_key`` run only on strings that pass one combined
search for what they need (``redaction_rules.TRIGGER``), which most strings fail in one C-level
scan. ``regex:`` rules run their own search on every string; strings longer than
``redaction_check.CHECK_LENGTH`` are scanned in windows of that size (see :class:`RegexFinder`).

A :class:`Redactor` is immutable (thread-safe) and pickles as its specs (rebuilt through the
cache on the other side, e.g. in the OTLP decode worker processes).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from tracehive.ingest import redaction_check
from tracehive.ingest.redaction_rules import (
    BUILTIN_NAMES,
    TRIGGER,
    EmailFinder,
    RedactionRuleError,
    Span,
    builtin_finder,
)
from tracehive.model.event import Event, EventUpdate

__all__ = [
    "BUILTIN_NAMES", "MAX_PATTERN_LENGTH", "MAX_RULES", "REDACTED_FIELDS", "RedactionRuleError",
    "Redactor", "RegexFinder", "marker", "parse_rules", "redactor_for",
]

MAX_RULES = 20
MAX_PATTERN_LENGTH = 1000
REDACTED_FIELDS = ("inputs", "outputs", "metadata", "config", "feedback", "user_properties")
REGEX_PREFIX = "regex:"
# A regex rule's window overlap on long strings: its longest match when bounded, at most this.
MAX_WINDOW_OVERLAP = 1024
# The shortest string a built-in rule can match ('::1'; every other one is longer).
_BUILTIN_MIN_LENGTH = {"email": 6, "phone": 8, "credit_card": 13, "ip": 3, "api_key": 15}


_SCALARS = frozenset((int, float, bool, type(None)))
# Below this length only an IPv6 such as '::1' or 'fe80::1' can match phone, credit_card, ip or
# api_key (the shortest IPv4 and phone numbers have 7 characters), and it contains '::': a cheaper
# test than TRIGGER for the many short strings of an event (roles, model names, finish reasons).
_SHORT = 7


def marker(rule: str) -> str:
    return f"[REDACTED:{rule}]"


class RegexFinder:
    """A ``regex:`` rule. Empty matches are ignored. A string of up to ``CHECK_LENGTH``
    characters is scanned whole. A longer one is scanned in windows of ``CHECK_LENGTH`` (the
    input length the pattern was measured on, so one window's cost is what the check allowed),
    each starting ``overlap`` characters before the previous one's end (the pattern's longest
    match when it is bounded, else ``MAX_WINDOW_OVERLAP``), with the real text on both sides
    visible to lookarounds. A match that reaches a window's end is matched again from its start
    on the whole string, so a long match is not cut. What can be missed: on a string over 16 KiB,
    a match longer than the overlap that does not fit in one window and is not found by its
    prefix (a pattern whose tail is needed for the match to exist at all)."""

    __slots__ = ("min_length", "name", "overlap", "rx")

    def __init__(self, rx: Any, max_width: int, min_width: int) -> None:
        self.name = "regex"
        self.rx = rx
        self.overlap = min(max_width, MAX_WINDOW_OVERLAP)
        self.min_length = min_width

    def spans(self, text: str) -> list[Span]:
        rx = self.rx
        n = len(text)
        window = redaction_check.CHECK_LENGTH
        if n <= window:
            if rx.search(text) is None:
                return []
            return [m.span() for m in rx.finditer(text) if m.end() > m.start()]
        spans: list[Span] = []
        pos = 0
        while True:
            end = min(n, pos + window)
            last = pos
            for m in rx.finditer(text, pos, end):
                a, b = m.span()
                if b == end < n:
                    whole = rx.match(text, a)
                    if whole is None:
                        continue  # an artefact of the window's end ('$', a lookahead)
                    b = whole.end()
                if b > a:
                    spans.append((a, b))
                    last = max(last, b)
                if b >= end:
                    break
            if end >= n:
                return spans
            pos = max(end - self.overlap, last, pos + 1)


def _key(spec: Any) -> str:
    """A spec as stored: built-in names stripped and lower-cased, regex rules as given."""
    if not isinstance(spec, str):
        raise RedactionRuleError(f"redaction rule {spec!r}: a rule is a string")
    return spec if spec.startswith(REGEX_PREFIX) else spec.strip().lower()


def _finder(spec: str, *, measure_jobs: list[Any] | None) -> Any:
    if not spec.startswith(REGEX_PREFIX):
        return builtin_finder(spec)
    pattern = spec[len(REGEX_PREFIX):]
    if not pattern:
        raise RedactionRuleError(f"redaction rule {spec!r}: the pattern is empty")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise RedactionRuleError(f"redaction rule {spec[:40]!r}...: the pattern is {len(pattern):,} "
                                 f"characters long (the limit is {MAX_PATTERN_LENGTH:,})")
    try:
        rx = re.compile(pattern)
        parsed = redaction_check.parse(pattern)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise RedactionRuleError(f"redaction rule {spec!r}: not a valid regular expression "
                                 f"({str(exc).splitlines()[0]})") from None
    redaction_check.check_structure(spec, parsed)
    if measure_jobs is not None:
        measure_jobs.append((spec, pattern, redaction_check.adversarial_inputs(parsed)))
    lo, hi = parsed.getwidth()
    return RegexFinder(rx, hi, lo)


def parse_rules(specs: Sequence[str], *, measure: bool = True) -> Redactor:
    """The :class:`Redactor` of ``specs``, each one checked (``measure=False`` skips the timed
    run of ``regex:`` patterns, for rules that passed it when they were set). Built-in names are
    case-insensitive and normalised; a repeated rule counts once; ``Redactor.specs`` is what to
    store. Raises :class:`RedactionRuleError`."""
    if isinstance(specs, str):
        specs = [specs]
    canonical: list[str] = []
    for spec in specs:
        key = _key(spec)
        if key not in canonical:
            canonical.append(key)
            if len(canonical) > MAX_RULES:
                raise RedactionRuleError(f"redaction rules: more than {MAX_RULES} given, the limit is {MAX_RULES}")
    jobs: list[Any] | None = [] if measure else None
    finders = [_finder(key, measure_jobs=jobs) for key in canonical]
    if jobs:
        redaction_check.measure(jobs)
    return Redactor(tuple(canonical), finders)


@functools.lru_cache(maxsize=256)
def redactor_for(specs: tuple[str, ...]) -> Redactor | None:
    """Ingest's entry point: the cached :class:`Redactor` of a project's stored rules (``None``
    when there are none: nothing to do)."""
    if not specs:
        return None
    return parse_rules(specs, measure=False)


def _rebuild(specs: tuple[str, ...]) -> Redactor:
    redactor = redactor_for(specs)
    assert redactor is not None
    return redactor


class Redactor:
    """A project's rules, compiled. Build with :func:`parse_rules` or :func:`redactor_for`."""

    __slots__ = ("_email", "_gated", "_min_length", "_regexes", "specs")

    def __init__(self, specs: tuple[str, ...], finders: Sequence[Any]) -> None:
        self.specs = specs
        self._email: tuple[int, Any] | None = None
        gated: list[tuple[int, Any]] = []
        regexes: list[tuple[int, Any]] = []
        lengths: list[int] = []
        for order, finder in enumerate(finders):
            if isinstance(finder, EmailFinder):
                self._email = (order, finder)
            elif isinstance(finder, RegexFinder):
                regexes.append((order, finder))
            else:
                gated.append((order, finder))
            lengths.append(finder.min_length if isinstance(finder, RegexFinder) else _BUILTIN_MIN_LENGTH[finder.name])
        self._gated = tuple(gated)
        self._regexes = tuple(regexes)
        self._min_length = max(1, min(lengths, default=1))

    def __reduce__(self) -> tuple[Any, tuple[tuple[str, ...]]]:
        return _rebuild, (self.specs,)

    def __repr__(self) -> str:
        return f"Redactor({list(self.specs)!r})"

    # --- strings -----------------------------------------------------------------------------

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """The ``(start, end, rule)`` each marker replaces in ``text``, in order, merged."""
        return self._spans(text, "@" in text, bool(self._gated) and TRIGGER.search(text) is not None)

    def _spans(self, text: str, at: bool, triggered: bool) -> list[tuple[int, int, str]]:
        hits: list[tuple[int, int, int, str]] = []
        if at and self._email is not None:
            order, finder = self._email
            hits.extend((a, -b, order, "email") for a, b in finder.spans(text))
        if triggered:
            for order, finder in self._gated:
                name = finder.name
                hits.extend((a, -b, order, name) for a, b in finder.spans(text))
        for order, finder in self._regexes:
            hits.extend((a, -b, order, "regex") for a, b in finder.spans(text))
        if not hits:
            return []
        hits.sort()
        merged: list[tuple[int, int, str]] = []
        cur_a, cur_b, cur_rule = -1, -1, ""
        for a, neg_b, _, rule in hits:
            b = -neg_b
            if a < cur_b:
                cur_b = max(cur_b, b)
                continue
            if cur_b > cur_a:
                merged.append((cur_a, cur_b, cur_rule))
            cur_a, cur_b, cur_rule = a, b, rule
        if cur_b > cur_a:
            merged.append((cur_a, cur_b, cur_rule))
        return merged

    @staticmethod
    def _render(text: str, spans: list[tuple[int, int, str]]) -> str:
        parts: list[str] = []
        pos = 0
        for a, b, rule in spans:
            parts.append(text[pos:a])
            parts.append(marker(rule))
            pos = b
        parts.append(text[pos:])
        return "".join(parts)

    def redact_text(self, text: str) -> tuple[str, list[str]]:
        """``text`` with its matches replaced, and the rule of each marker written."""
        if len(text) < self._min_length:
            return text, []
        spans = self.spans(text)
        if not spans:
            return text, []
        return self._render(text, spans), [rule for _, _, rule in spans]

    # --- JSON values -------------------------------------------------------------------------

    def redact_in_place(self, root: Any, tally: dict[str, int] | None = None) -> int:
        """Redact every string inside ``root`` (a dict or a list; anything else is left as is),
        in place, at any depth (no recursion: depth does not matter). The number of markers
        written; ``tally`` (if given) counts them by rule."""
        if not isinstance(root, (dict, list)):
            return 0
        return self._walk([root], tally)

    def _walk(self, stack: list[Any], tally: dict[str, int] | None) -> int:
        """Redact the dicts and lists on ``stack`` and everything inside them."""
        # The hot loop: values only, most strings settled inline by one length test, one '@' test
        # and one TRIGGER search; a node with a string that may need a marker gets a second pass.
        count = 0
        min_length = self._min_length
        email = self._email is not None
        trigger = TRIGGER.search if self._gated else None
        searches = tuple(finder.rx.search for _, finder in self._regexes)
        window = redaction_check.CHECK_LENGTH

        def regex_hit(text: str) -> bool:
            if len(text) > window:
                return True  # scanned in windows by RegexFinder, never whole
            for search in searches:
                if search(text) is not None:
                    return True
            return False

        regexes = regex_hit if searches else None
        pop, push = stack.pop, stack.append
        while stack:
            node = pop()
            suspect = False
            for value in (node.values() if type(node) is dict else node):
                kind = type(value)
                if kind is str:
                    if suspect:
                        continue
                    n = len(value)
                    if n >= min_length and (
                            (email and "@" in value)
                            or (trigger is not None
                                and (trigger(value) is not None if n >= _SHORT else "::" in value))
                            or (regexes is not None and regexes(value))):
                        suspect = True
                elif kind is dict or kind is list:
                    push(value)
                elif kind in _SCALARS:
                    pass
                elif isinstance(value, (dict, list)):
                    push(value)
                elif isinstance(value, str):
                    suspect = True
            if suspect:
                count += self._redact_node(node, tally)
        return count

    def _redact_node(self, node: Any, tally: dict[str, int] | None) -> int:
        """Redact the strings directly in ``node`` (a dict or a list)."""
        count = 0
        changes: list[tuple[Any, str]] = []
        for key, value in (node.items() if isinstance(node, dict) else enumerate(node)):
            if isinstance(value, str):
                new, rules = self.redact_text(str(value))
                if rules:
                    changes.append((key, new))
                    count += len(rules)
                    if tally is not None:
                        for rule in rules:
                            tally[rule] = tally.get(rule, 0) + 1
        for key, new in changes:
            node[key] = new
        return count

    def apply(self, event: Event, tally: dict[str, int] | None = None) -> int:
        """Redact an event's ``REDACTED_FIELDS`` in place; the number of markers written."""
        roots = [value for value in (event.inputs, event.outputs, event.metadata, event.config, event.feedback,
                                     event.user_properties) if value and isinstance(value, (dict, list))]
        return self._walk(roots, tally) if roots else 0

    def apply_update(self, update: EventUpdate, tally: dict[str, int] | None = None) -> int:
        """The same for a partial update (``PUT /v1/events``): its ``outputs``, ``metadata``,
        ``config``, ``feedback`` and ``user_properties``."""
        roots = [value for value in (update.outputs, update.metadata, update.config, update.feedback,
                                     update.user_properties) if value and isinstance(value, (dict, list))]
        return self._walk(roots, tally) if roots else 0
