"""Whether a ``regex:PATTERN`` redaction rule is safe to run on every string ingested.

Python's ``re`` has no timeout and holds the GIL while it matches, so one pathological pattern
would stall the whole server. A pattern is checked when it is set, in two steps:

1. Structure (:func:`check_structure`, on the standard library's own parse of the pattern):
   refused when it can match the empty string (it would redact everywhere), uses a
   backreference or a conditional group (matching those is exponential in general), or nests an
   unbounded repeat (``*``, ``+``, ``{n,}``, or more than 255) inside another repeat that can run
   more than once: ``(a+)+$``, ``(.*a){20}``, ``^(\\w+\\s?)*$``. Possessive repeats and atomic
   groups (Python 3.11+) do not backtrack and are not counted. Bound the inner repeat instead:
   ``(?:\\w{1,40}\\s?)*``.
2. Measure (:func:`measure`): the pattern runs, as ingest runs it (``finditer`` over the whole
   string), on adversarial inputs of ``CHECK_LENGTH`` characters made from the pattern itself:
   each repeat pumped with its own body and followed by a character that makes the match fail,
   and runs of each character the pattern names. That happens in a child process (``python -I
   -S``) that reports the CPU time of each input; the pattern is refused when one input takes
   more than ``CHECK_BUDGET_S`` of CPU (quadratic and worse patterns take 10-100x that at this
   length: ``.*password``, ``\\w+@``, ``(a|a)*b``), or when the child is still busy
   ``CHECK_WALL_S`` after it started an input, in which case it is killed. CPU time, not wall
   time, decides, so a busy machine does not refuse a good pattern.

This is a test, not a proof: a pattern can be slow on inputs the check did not think of. At
ingest, ``redaction.RegexFinder`` therefore scans strings longer than ``CHECK_LENGTH`` in windows
of that size, so what one window costs was bounded by the measure and a long string costs at most
its number of windows times that.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

from tracehive.ingest.redaction_rules import RedactionRuleError

try:  # the standard library's regex parser: re._parser from 3.11, sre_parse before
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse as _sre_parse  # type: ignore[no-redef]

MAXREPEAT = _sre_parse.MAXREPEAT
# An inner repeat allowed up to this many times is treated as bounded.
NESTED_REPEAT_LIMIT = 255
CHECK_LENGTH = 16_384
CHECK_BUDGET_S = 0.05
CHECK_WALL_S = 0.75
# The child's own start (an interpreter with no site packages) may take this long on a busy machine.
CHECK_START_S = 10.0
MAX_INPUTS = 32

_REPEATS = ("MAX_REPEAT", "MIN_REPEAT")
_SAMPLES = "a0 A_-.@!x~"


def _name(op: Any) -> str:
    return str(op)


def parse(pattern: str, flags: int = 0) -> Any:
    return _sre_parse.parse(pattern, flags)


def check_structure(spec: str, parsed: Any) -> None:
    """Raise :class:`RedactionRuleError` for an empty-matching or a structurally pathological pattern."""
    if parsed.getwidth()[0] == 0:
        raise RedactionRuleError(f"redaction rule {spec!r}: the pattern can match the empty string "
                                 "(it would redact everywhere)")
    _walk_structure(spec, parsed, under_repeat=False)


def _walk_structure(spec: str, items: Any, under_repeat: bool) -> None:
    for op, av in items:
        name = _name(op)
        if name in ("GROUPREF", "GROUPREF_EXISTS", "GROUPREF_IGNORE", "GROUPREF_LOC_IGNORE", "GROUPREF_UNI_IGNORE"):
            raise RedactionRuleError(f"redaction rule {spec!r}: backreferences and conditional groups are "
                                     "not allowed (their matching time can explode)")
        if name in _REPEATS:
            _, hi, sub = av
            unbounded = hi == MAXREPEAT or hi > NESTED_REPEAT_LIMIT
            if unbounded and under_repeat:
                raise RedactionRuleError(
                    f"redaction rule {spec!r}: nested repeats ('(a+)+', '(.*x){{n}}') can take exponential "
                    "time; bound the inner one, e.g. '{1,64}' instead of '+'")
            _walk_structure(spec, sub, under_repeat or hi > 1)
        elif name == "POSSESSIVE_REPEAT":
            _walk_structure(spec, av[2], False)
        elif name == "ATOMIC_GROUP":
            _walk_structure(spec, av, False)
        elif name == "SUBPATTERN":
            _walk_structure(spec, av[-1], under_repeat)
        elif name == "BRANCH":
            for alternative in av[1]:
                _walk_structure(spec, alternative, under_repeat)
        elif name in ("ASSERT", "ASSERT_NOT"):
            _walk_structure(spec, av[1], under_repeat)


# ------------------------------------------------------------------------------------------------
# Inputs made from the pattern
# ------------------------------------------------------------------------------------------------


def _in_class(items: Any, ch: str) -> bool:
    code = ord(ch)
    negate = False
    found = False
    for op, av in items:
        name = _name(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            found = found or code == av
        elif name == "RANGE":
            found = found or av[0] <= code <= av[1]
        elif name == "CATEGORY":
            cat = _name(av)
            if "DIGIT" in cat:
                hit = ch.isdigit()
            elif "SPACE" in cat:
                hit = ch.isspace()
            elif "WORD" in cat:
                hit = ch.isalnum() or ch == "_"
            elif "LINEBREAK" in cat:
                hit = ch == "\n"
            else:
                hit = False
            found = found or (hit != ("NOT" in cat))
    return found != negate


def _literals(items: Any, out: list[str]) -> None:
    for op, av in items:
        name = _name(op)
        if name == "LITERAL" and chr(av) not in out:
            out.append(chr(av))
        elif name in _REPEATS or name == "POSSESSIVE_REPEAT":
            _literals(av[2], out)
        elif name == "SUBPATTERN":
            _literals(av[-1], out)
        elif name == "ATOMIC_GROUP":
            _literals(av, out)
        elif name == "BRANCH":
            for alternative in av[1]:
                _literals(alternative, out)
        elif name in ("ASSERT", "ASSERT_NOT"):
            _literals(av[1], out)


class _Gen:
    """Text that walks the pattern: ``variant`` 0 takes each class's first sample and each
    branch's first alternative, 1 a sample that is not one of the pattern's literals and the last
    alternative. With ``target`` (a repeat), the text stops there: that repeat's body is pumped
    to about ``CHECK_LENGTH`` characters."""

    def __init__(self, literals: list[str], variant: int, target: Any = None) -> None:
        self.pool = (literals + [c for c in _SAMPLES if c not in literals]) if variant == 0 else \
            ([c for c in _SAMPLES if c not in literals] + literals)
        self.variant = variant
        self.target = target
        self.done = False

    def sample(self, items: Any) -> str:
        for ch in self.pool:
            if _in_class(items, ch):
                return ch
        return "a"

    def text(self, items: Any) -> str:
        parts: list[str] = []
        for op, av in items:
            if self.done:
                break
            name = _name(op)
            if name == "LITERAL":
                parts.append(chr(av))
            elif name == "NOT_LITERAL":
                parts.append("b" if av == ord("a") else "a")
            elif name == "IN":
                parts.append(self.sample(av))
            elif name == "ANY":
                parts.append(self.pool[0] if self.pool[0] != "\n" else "a")
            elif name in _REPEATS or name == "POSSESSIVE_REPEAT":
                lo, hi, sub = av
                if av is self.target:
                    body = _Gen(self.pool, self.variant).text(sub) or "a"
                    parts.append(body * max(1, min(hi, CHECK_LENGTH // len(body))))
                    self.done = True
                else:
                    reps = min(max(lo, 1), hi)
                    parts.extend(self.text(sub) for _ in range(min(reps, 64)))
            elif name == "SUBPATTERN":
                parts.append(self.text(av[-1]))
            elif name == "ATOMIC_GROUP":
                parts.append(self.text(av))
            elif name == "BRANCH":
                alternatives = av[1]
                parts.append(self.text(alternatives[0] if self.variant == 0 else alternatives[-1]))
        return "".join(parts)


def _repeats(items: Any, out: list[Any]) -> None:
    for op, av in items:
        name = _name(op)
        if name in _REPEATS or name == "POSSESSIVE_REPEAT":
            if av[1] > 1:
                out.append(av)
            _repeats(av[2], out)
        elif name == "SUBPATTERN":
            _repeats(av[-1], out)
        elif name == "ATOMIC_GROUP":
            _repeats(av, out)
        elif name == "BRANCH":
            for alternative in av[1]:
                _repeats(alternative, out)
        elif name in ("ASSERT", "ASSERT_NOT"):
            _repeats(av[1], out)


def adversarial_inputs(parsed: Any) -> list[list[tuple[str, int]]]:
    """Inputs for :func:`measure`, each a list of ``(text, times)`` pieces (sent as such to the
    child and joined there): pumped repeats and uniform runs, each ending in a character that
    makes a match fail, at most ``MAX_INPUTS``."""
    literals: list[str] = []
    _literals(parsed, literals)
    repeats: list[Any] = []
    _repeats(parsed, repeats)
    inputs: list[list[tuple[str, int]]] = []
    seen: set[str] = set()

    def add(pieces: list[tuple[str, int]]) -> None:
        key = json.dumps(pieces)
        if key not in seen and len(inputs) < MAX_INPUTS:
            seen.add(key)
            inputs.append(pieces)

    for fail in ("\x00", "!"):
        for target in repeats[:8]:
            for variant in (0, 1):
                prefix = _Gen(literals, variant, target).text(parsed)
                add([(prefix, 1), (fail, 1)])
        for ch in (literals + list(_SAMPLES))[:10]:
            add([(ch, CHECK_LENGTH), (fail, 1)])
    return inputs


# ------------------------------------------------------------------------------------------------
# Running them
# ------------------------------------------------------------------------------------------------

_CHILD = r"""
import json, re, sys, time
jobs = json.loads(sys.stdin.read())
compiled = [re.compile(pattern) for pattern, _ in jobs]
out = sys.stdout
out.write("ready\n")
out.flush()
for i, (rx, (_, inputs)) in enumerate(zip(compiled, jobs)):
    for j, pieces in enumerate(inputs):
        text = "".join(t * n for t, n in pieces)
        t0 = time.process_time()
        for _ in rx.finditer(text):
            pass
        out.write("%d %d %.6f\n" % (i, j, time.process_time() - t0))
        out.flush()
out.write("done\n")
out.flush()
"""


def measure(jobs: Sequence[tuple[str, str, list[list[tuple[str, int]]]]]) -> None:
    """Run each ``(spec, pattern, inputs)`` in one child process; raise
    :class:`RedactionRuleError` for the first pattern over budget."""
    if not jobs:
        return
    proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _CHILD], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    expected = [(i, j) for i, (_, _, inputs) in enumerate(jobs) for j in range(len(inputs))]
    try:
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps([[pattern, inputs] for _, pattern, inputs in jobs]))
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the child is gone: said below, when its "ready" does not come
        ready = lines.get(timeout=CHECK_START_S)
        if ready != "ready\n":
            raise RedactionRuleError(f"redaction rule {jobs[0][0]!r}: the patterns could not be tested "
                                     f"(the test process ended with {proc.wait()})")
        for i, j in expected:
            spec = jobs[i][0]
            try:
                line = lines.get(timeout=CHECK_WALL_S)
            except queue.Empty:
                raise RedactionRuleError(
                    f"redaction rule {spec!r}: the pattern was still running after {CHECK_WALL_S:g} s on a "
                    f"{CHECK_LENGTH:,}-character input made to test it (catastrophic backtracking); bound its "
                    "repeats and avoid alternatives that match the same text, e.g. '(a|a)*'") from None
            if line is None:
                raise RedactionRuleError(f"redaction rule {spec!r}: the pattern could not be tested "
                                         f"(the test process ended with {proc.wait()})")
            cpu = float(line.split()[2])
            if cpu > CHECK_BUDGET_S:
                raise RedactionRuleError(
                    f"redaction rule {spec!r}: the pattern took {cpu * 1000:.0f} ms on a {CHECK_LENGTH:,}-character "
                    f"input made to test it (the limit is {CHECK_BUDGET_S * 1000:.0f} ms): it backtracks too "
                    "much; bound its repeats, e.g. '{1,64}' instead of '+' or '*'")
    except queue.Empty:
        raise RedactionRuleError(f"redaction rule {jobs[0][0]!r}: the patterns could not be tested "
                                 f"(the test process did not start within {CHECK_START_S:g} s)") from None
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()

