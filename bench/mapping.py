#!/usr/bin/env python
"""In-process micro-benchmark of the OTLP ingest CPU path, per span: ``otlp_decode.decode_protobuf``
and ``span_mapping.spans_to_events`` on the same requests ``bench/otlp.py`` sends (its generator:
HoneyHive-tracer-shaped traces, ``--batch`` spans per ``ExportTraceServiceRequest``).

    python bench/mapping.py                    # 8 requests x 512 spans, best of 7 rounds
    python bench/mapping.py --profile          # + cProfile of spans_to_events (top 25 by tottime)
    python bench/mapping.py --check            # + print a digest of the mapped events (compare runs)
    python bench/mapping.py --transfer         # + the events' trip from a decode worker to the server:
                                               #   pickle against ingest/event_transfer, each side
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
import uuid
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import otlp  # noqa: E402  (bench/otlp.py: the span generator and request builder)

from tracehive.ingest.otlp_decode import decode_protobuf  # noqa: E402
from tracehive.ingest.span_mapping import spans_to_events  # noqa: E402


def build(n_requests: int, batch: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    sessions = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(64)]
    real_time_ns = otlp.time.time_ns
    otlp.time.time_ns = lambda: 1_760_000_000 * 10**9  # fixed timestamps: a reproducible --check digest
    try:
        reqs, _, _ = otlp.build_requests(n_requests, batch, sessions, "key", 0, rng, use_gzip=False)
    finally:
        otlp.time.time_ns = real_time_ns
    bodies = []
    for raw in reqs:
        bodies.append(raw.split(b"\r\n\r\n", 1)[1])
    return bodies


def best(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def digest(bodies: list[bytes]) -> str:
    h = hashlib.sha256()
    for body in bodies:
        mapped = spans_to_events(decode_protobuf(body).spans, default_source="bench")
        for ev in mapped.events:
            h.update(json.dumps(ev.to_dict(), sort_keys=False, default=repr).encode())
            h.update(repr(ev.session_name_hint).encode())
        h.update(repr(mapped.rejected).encode())
    return h.hexdigest()[:16]


def transfer(decoded: list, n: int, rounds: int) -> None:
    """What the events' trip back from a decode worker costs each side: the worker writes the
    message, the server reads it (``ProcessPoolExecutor`` pickles whatever the call returns)."""
    import pickle

    from tracehive.ingest.event_transfer import pack, unpack

    events = [spans_to_events(spans, default_source="bench").events for spans in decoded]
    pickled = [pickle.dumps(e, pickle.HIGHEST_PROTOCOL) for e in events]
    packed = [pickle.dumps(pack(e), pickle.HIGHEST_PROTOCOL) for e in events]
    assert all(unpack(pickle.loads(p)) == e for p, e in zip(packed, events))
    ways = {
        "pickle, worker writes": lambda: [pickle.dumps(e, pickle.HIGHEST_PROTOCOL) for e in events],
        "pickle, server reads": lambda: [pickle.loads(p) for p in pickled],
        "JSON, worker writes": lambda: [pickle.dumps(pack(e), pickle.HIGHEST_PROTOCOL) for e in events],
        "JSON, server reads": lambda: [unpack(pickle.loads(p)) for p in packed],
    }
    print(f"  transfer ({sum(map(len, pickled)) / n:.0f} B/span pickled, {sum(map(len, packed)) / n:.0f} B/span JSON)")
    for label, fn in ways.items():
        print(f"    {label:22} {best(fn, rounds) / n * 1e6:6.1f} us/span")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--transfer", action="store_true")
    args = ap.parse_args(argv)

    bodies = build(args.requests, args.batch, args.seed)
    decoded = [decode_protobuf(b).spans for b in bodies]
    n = sum(len(s) for s in decoded)

    def do_decode() -> None:
        for b in bodies:
            decode_protobuf(b)

    def do_map() -> None:
        for spans in decoded:
            spans_to_events(spans, default_source="bench")

    do_decode()
    do_map()  # warm-up
    t_dec = best(do_decode, args.rounds)
    t_map = best(do_map, args.rounds)
    print(f"{n} spans ({args.requests} requests x {args.batch}), best of {args.rounds} rounds")
    print(f"  decode  {t_dec / n * 1e6:7.1f} us/span  ({n / t_dec:9,.0f} spans/s)")
    print(f"  mapping {t_map / n * 1e6:7.1f} us/span  ({n / t_map:9,.0f} spans/s)")
    print(f"  total   {(t_dec + t_map) / n * 1e6:7.1f} us/span")
    if args.check:
        print(f"  digest  {digest(bodies)}")
    if args.transfer:
        transfer(decoded, n, args.rounds)
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        do_map()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
