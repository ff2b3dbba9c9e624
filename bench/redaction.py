#!/usr/bin/env python
"""In-process micro-benchmark of redaction at ingest (issue 17, point 2): the CPU cost per event of
``Redactor.apply`` with the five built-in rules (email, phone, credit_card, ip, api_key), next to
no rules, in one run.

The events are bench/ingest.py's (~1 KB LLM traces: chat messages, completions, tool results,
config, metadata), with personal data put into a share of them (``--pii``, default 20%): an email
address, a phone number, a card number, an IP address or an API key in a user message, a tool
result or the metadata. Each round redacts fresh copies of the same events (the copies are made
outside the timed part); a figure is the best of ``--rounds`` rounds.

For scale, the table also times what the REST route does with each event before it is written
(``orjson.loads`` of the event, ``PostEventRequest`` validation and ``event_from_request``), and
gives the redaction cost as a share of the server's CPU per event measured by bench/ingest.py
(``--server-us``, default 89 µs: 8.9 s of server CPU for 100,000 events, BENCHMARKS.md).

    python bench/redaction.py                  # 20,000 events, 20% with personal data, best of 5
    python bench/redaction.py --pii 0 --events 50000
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import orjson

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import ingest  # bench/ingest.py: the event generator

from tracehive.ingest.normalize import event_from_request
from tracehive.ingest.redaction import parse_rules, redactor_for
from tracehive.model.event import Event
from tracehive.model.wire import PostEventRequest

FIVE = ("email", "phone", "credit_card", "ip", "api_key")

PII_MESSAGES = [
    "Hi, I'm Dana Whitfield, you can reach me at dana.whitfield@globex-corp.com or on +1 (415) 555-2671.",
    "My card 4111 1111 1111 1111 was charged twice for the Team plan, can you refund one of them?",
    "The webhook calls come from 203.0.113.42 and our firewall blocks them, which IP ranges do you use?",
    "Here is my key sk-proj-4fT9kQ2mZ8xW1vB7nR3yL6cH0dJ5sA2eG9uK, why does it get a 401 on /v1/chat?",
    "Please call me back on 020 7946 0958 or email j.smith@example.co.uk about the invoice.",
    "Our AWS key AKIAIOSFODNN7EXAMPLE leaked in a log, how do I purge those traces from your side?",
    "Connect from 2001:db8:85a3::8a2e:370:7334 failed; the VPN gives 10.12.0.7 instead.",
]


def make(n: int, pii: float, seed: int) -> list[bytes]:
    """``n`` events as JSON (a fresh copy is decoded for each round)."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    while len(events) < n:
        events.extend(ingest.make_events(rng, ingest._uuid(rng), min(100, n - len(events)), 1_765_000_000_000))
    for event in events:
        if rng.random() >= pii:
            continue
        text = rng.choice(PII_MESSAGES)
        kind = event["event_type"]
        if kind == "model":
            event["inputs"]["chat_history"][1]["content"] = text
        elif kind == "tool":
            event["outputs"]["results"][0]["text"] = text
        else:
            event["metadata"]["customer_note"] = text
    return [orjson.dumps(e) for e in events]


def to_event(d: dict[str, Any]) -> Event:
    return Event(event_id=d["event_id"], session_id="s", event_type=d["event_type"], event_name=d["event_name"],
                 source=d["source"], start_time=d["start_time"], end_time=d["end_time"], duration=0,
                 config=d["config"], inputs=d["inputs"], outputs=d["outputs"], metadata=d["metadata"])


def time_redaction(bodies: list[bytes], specs: tuple[str, ...], rounds: int) -> tuple[float, int]:
    """Best µs per event of ``apply`` over fresh copies, and the markers written in one round."""
    redactor = redactor_for(specs)
    best = float("inf")
    markers = 0
    for _ in range(rounds):
        events = [to_event(orjson.loads(b)) for b in bodies]
        t0 = time.perf_counter()
        count = 0
        if redactor is not None:
            apply = redactor.apply
            for event in events:
                count += apply(event)
        best = min(best, time.perf_counter() - t0)
        markers = count
    return best / len(bodies) * 1e6, markers


def time_rest_path(bodies: list[bytes], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for body in bodies:
            event_from_request(PostEventRequest.model_validate(orjson.loads(body)))
        best = min(best, time.perf_counter() - t0)
    return best / len(bodies) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--pii", type=float, default=0.2, help="share of events with personal data (0-1)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--server-us", type=float, default=89.0,
                        help="server CPU per event in bench/ingest.py --quick, µs (for the share column)")
    args = parser.parse_args(argv)

    bodies = make(args.events, args.pii, args.seed)
    size = sum(map(len, bodies)) / len(bodies)
    cases: list[tuple[str, tuple[str, ...]]] = [("no rules", ())]
    cases += [(name, (name,)) for name in FIVE]
    cases += [("five rules", FIVE), ("five + regex:EMP-[0-9]{6}", (*FIVE, "regex:EMP-[0-9]{6}"))]
    for _, specs in cases:
        if specs:
            parse_rules(specs)  # checked as the CLI would, once, outside the timing
    rest = time_rest_path(bodies, args.rounds)
    print(f"{args.events:,} events of {size:.0f} B (JSON), {args.pii:.0%} with personal data; best of "
          f"{args.rounds} rounds; Python {sys.version.split()[0]}; load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores at the start")
    print(f"REST path before the write (orjson + PostEventRequest + event_from_request): {rest:.1f} µs/event")
    print()
    print(f"| rules | µs/event | markers | vs REST path | vs server CPU ({args.server_us:g} µs/event) |")
    print("|---|---|---|---|---|")
    for label, specs in cases:
        us, markers = time_redaction(bodies, specs, args.rounds)
        print(f"| {label} | {us:.2f} | {markers:,} | {us / rest:.1%} | {us / args.server_us:.1%} |")
    print()
    print("command: python bench/redaction.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
