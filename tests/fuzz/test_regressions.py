"""One focused example per defect the fuzz suites found (issue 7), through the real app where the
defect was reachable from a request. Each test names the input that used to fail and how.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.helpers import Api, assert_error, make_key
from tracehive.app import create_app
from tracehive.ingest.otlp_decode import decode_json_document
from tracehive.model.errors import ValidationFailed
from tracehive.query.chart import CALENDAR_END_MS, CALENDAR_START_MS, Bucket, count_buckets
from tracehive.query.filters import parse_number
from tracehive.settings import Settings

JSON = {"Content-Type": "application/json"}
TRACE, SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[Api, Path]]:
    data_dir = tmp_path / "data"
    key = make_key(data_dir, "regressions")
    settings = Settings(data_dir=data_dir)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Api(client, key), settings.database_path


def event_rows(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()


def otlp(**span: Any) -> bytes:
    fields = {"traceId": TRACE, "spanId": SPAN, "name": "op", "startTimeUnixNano": "1700000000000000000", **span}
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [fields]}]}]}).encode()


# 1. otlp_decode_json_values._uint64: a fixed64 written as a string of 5000 digits reached int(),
#    which refuses more than 4300 digits (ValueError): a 500. Now out of range, a 400 naming the field.


def test_1_otlp_time_of_5000_digits_is_a_400_naming_the_field(app: tuple[Api, Path]) -> None:
    api, db = app
    for field in ("startTimeUnixNano", "endTimeUnixNano"):
        response = api.request("POST", "/v1/traces", content=otlp(**{field: "1" * 5000}), headers=JSON)
        assert_error(response, 400, f"spans[0].{field}", "out of the unsigned 64-bit range")
    assert event_rows(db) == 0
    # Leading zeros are still just a number (the length check is on the significant digits).
    decoded = decode_json_document(json.loads(otlp(startTimeUnixNano="0" * 5000 + "7")))
    assert decoded.spans[0].start_time_unix_nano == 7


# 2. otlp_decode_json_values._enum: str.isdigit() is true of "²" (and of 5000 digits), int() then
#    raised ValueError: a 500. Now "²" is an unknown name (400) and a huge number an unknown value
#    (unspecified, as OTLP's open enums require).


def test_2_otlp_enum_with_digits_int_refuses(app: tuple[Api, Path]) -> None:
    api, db = app
    assert_error(api.request("POST", "/v1/traces", content=otlp(kind="²"), headers=JSON), 400, "spans[0].kind",
                 "unknown value '²'")
    assert_error(api.request("POST", "/v1/traces", content=otlp(status={"code": "¹"}), headers=JSON), 400,
                 "spans[0].status.code")
    assert event_rows(db) == 0
    response = api.request("POST", "/v1/traces", content=otlp(kind="1" * 5000), headers=JSON)
    assert response.status_code == 200, response.text
    decoded = decode_json_document(json.loads(otlp(kind="1" * 5000, status={"code": "0" * 4000 + "2"})))
    assert (decoded.spans[0].kind, decoded.spans[0].status_code) == ("SPAN_KIND_UNSPECIFIED", "STATUS_CODE_ERROR")


# 3. query.values._finite: an integer past the float range (a filter value "1" followed by 320
#    zeros, or 10**400 in the Python-literal query form) went through float(): OverflowError, a 500
#    on export, search, GET /v1/events and the chart. Now it is no number: a 400.


def test_3_filter_number_past_the_float_range_is_a_400(app: tuple[Api, Path]) -> None:
    api, _ = app
    huge = "1" + "0" * 320
    assert parse_number(huge) is None and parse_number(10**400) is None and parse_number(2**64) == float(2**64)
    for typed in ({"type": "number"}, {}):  # typed, and a string filter promoted by its operator
        flt = {"field": "duration", "operator": "greater than", "value": huge, **typed}
        for path in ("/v1/events/export", "/v1/events/search"):
            assert_error(api.post(path, json={"filters": [flt]}), 400, "filters[0].value")
        assert_error(api.get("/v1/events", params={"filters": json.dumps([flt])}), 400, "filters[0].value")
        assert_error(api.get("/v1/events/chart", params={"filters": json.dumps([flt])}), 400, "filters[0].value")
    python_literal = "[{'field': 'duration', 'operator': 'greater than', 'value': " + huge + "}]"
    assert_error(api.get("/v1/events", params={"filters": python_literal}), 400, "filters[0].value")


# 4. query.chart.count_buckets: a dateRange reaching past the years 1..9999 with month buckets
#    (datetime.fromtimestamp: ValueError / OverflowError): a 500. Now the range is cut to the
#    calendar a chart can show.


def test_4_chart_date_range_past_the_calendar(app: tuple[Api, Path]) -> None:
    api, _ = app
    for start in ("-1000000000000000", "-1e300"):  # year -29719; far past time_t
        response = api.get("/v1/events/chart", params={"bucket": "month", "dateRange[$gte]": start,
                                                       "dateRange[$lte]": "2024-01-01T00:00:00Z"})
        assert_error(response, 400, "month buckets, more than the limit")
    for start, end in (("1e17", "1e300"), ("-1e300", "-1e17")):  # entirely outside the calendar
        response = api.get("/v1/events/chart", params={"bucket": "month", "dateRange[$gte]": start, "dateRange[$lte]": end})
        assert response.status_code == 200, response.text
        assert response.json() == {"events": [], "totalEvents": 0}
    assert count_buckets(-1e300, 1e300, Bucket.MONTH) == 9999 * 12
    assert count_buckets(CALENDAR_END_MS + 1, 1e300, Bucket.DAY) == 0


# 5. A stored event whose start_time is far outside the calendar (the write routes accept up to
#    2**53 ms either side of the epoch) broke every chart of its project: SQLite's month bucket
#    was NULL (int(None): TypeError) and the other buckets' ISO dates raised ValueError: 500s.
#    Now charts leave such events out; export still returns them.


def test_5_events_beyond_the_calendar_do_not_break_charts(app: tuple[Api, Path]) -> None:
    api, _ = app
    far = [2**53 - 1, -(2**53), CALENDAR_END_MS + 1, CALENDAR_START_MS - 1]
    for start in [*far, 1_700_000_000_000, CALENDAR_START_MS, CALENDAR_END_MS]:
        response = api.post("/v1/events", json={"event_type": "tool", "event_name": str(start), "inputs": {},
                                                "start_time": start, "duration": 0})
        assert response.status_code == 200, response.text
    tool_only = json.dumps([{"field": "event_type", "operator": "is", "value": "tool"}])
    for bucket in ("minute", "hour", "day", "week", "month"):
        response = api.get("/v1/events/chart", params={"bucket": bucket, "aggregation": "count", "filters": tool_only})
        assert response.status_code == 200, (bucket, response.text)
        rows = response.json()["events"]
        assert sum(row["count"] for row in rows) == 3, (bucket, rows)
        assert rows[0]["bucket_iso"].startswith("0001-01-01") and rows[-1]["bucket_iso"].startswith("9999-12")
    exported = api.post("/v1/events/export", json={"filters": json.loads(tool_only), "limit": 100}).json()["events"]
    assert sorted(e["start_time"] for e in exported) == sorted([*far, 1_700_000_000_000, CALENDAR_START_MS,
                                                                CALENDAR_END_MS])


# 6. The JSON routes ignored Content-Encoding: a gzip body (a 30 MiB bomb here) was answered
#    "not valid UTF-8: invalid byte 0x8b at offset 1", which does not say what is wrong. Now a 415
#    naming the encoding, before any of it is inflated.


def test_6_compressed_body_on_a_json_route_is_a_415(app: tuple[Api, Path]) -> None:
    api, db = app
    bomb = gzip.compress(b" " * (30 << 20))
    for method, path in (("POST", "/v1/events"), ("POST", "/v1/sessions"), ("POST", "/events"), ("PUT", "/events"),
                         ("POST", "/session/start"), ("POST", "/v1/events/export"), ("POST", "/v1/sessions/search")):
        for encoding in ("gzip", "deflate", "br"):
            response = api.request(method, path, content=bomb, headers={**JSON, "Content-Encoding": encoding})
            assert_error(response, 415, f"Content-Encoding {encoding}", "uncompressed")
    assert event_rows(db) == 0
    # An uncompressed body with a harmless (or bogus) encoding label still goes through.
    for label in ("identity", "utf-8"):
        response = api.post("/v1/events", json={"event_type": "tool", "inputs": {}}, headers={"Content-Encoding": label})
        assert response.status_code == 200, response.text


# 7. OTLP/JSON: a body that is not UTF-8 was refused as "str is not valid UTF-8: surrogates not
#    allowed" whatever the byte (orjson's wording). Now the message names the byte and its offset.


def test_7_otlp_json_invalid_utf8_names_the_byte(app: tuple[Api, Path]) -> None:
    api, _ = app
    for path in ("/v1/traces", "/opentelemetry/v1/traces"):
        response = api.request("POST", path, content=b'{"resourceSpans": [], "\xff": 1}', headers=JSON)
        body = assert_error(response, 400, "not valid UTF-8", "0xff at offset 23")
        assert "surrogates" not in body["message"]
        compressed = api.request("POST", path, content=gzip.compress(otlp()), headers=JSON)  # no Content-Encoding
        assert_error(compressed, 400, "0x8b at offset 1", "gzip-compressed")


# 8. The chart's bucket_iso came from strftime("%Y"), which does not pad years below 1000:
#    "500-01-01T00:00:00.000Z" is no ISO 8601 date. Now "0500-01-01T00:00:00.000Z".


def test_8_bucket_iso_of_early_years_is_iso_8601(app: tuple[Api, Path]) -> None:
    api, _ = app
    year_500 = -46_388_678_400_000  # 0500-01-01T00:00:00Z
    assert api.post("/v1/events", json={"event_type": "tool", "inputs": {}, "start_time": year_500 + 1}).status_code == 200
    response = api.get("/v1/events/chart", params={"bucket": "month", "aggregation": "count"})
    assert response.status_code == 200, response.text
    rows = response.json()["events"]
    assert [(row["bucket"], row["bucket_iso"]) for row in rows] == [(year_500, "0500-01-01T00:00:00.000Z")]


# 9. A lone surrogate escape ("\\ud800") in a filter value sent as JSON in a query parameter (or in
#    evaluation_id) decoded to a str SQLite cannot bind (UnicodeEncodeError): a 500. Found by the
#    property suite under hypothesis 6.170 in CI. Now a 400 naming the value.


def test_9_lone_surrogate_in_a_filter_value_is_a_400(app: tuple[Api, Path]) -> None:
    api, _ = app
    flt = '[{"field": "event_name", "operator": "is", "value": "\\ud800"}]'
    for path in ("/v1/events", "/events", "/v1/events/schema", "/v1/events/chart"):
        assert_error(api.get(path, params={"filters": flt}), 400, "filters[0].value", "lone surrogate")
    # The same escape in a JSON body's evaluation_id.
    body = b'{"evaluation_id": "\\ud800"}'
    for path in ("/v1/events/export", "/v1/events/search"):
        response = api.request("POST", path, content=body, headers={"Content-Type": "application/json"})
        assert 400 <= response.status_code < 500, response.text
    assert api.get("/v1/events", params={"filters": flt.replace("\\ud800", "\\u00e9")}).status_code == 200


def test_regressions_raise_only_api_errors() -> None:
    """The decoder-level forms of 1 and 2 are ``ValidationFailed`` (a 400), nothing else."""
    for span in ({"startTimeUnixNano": "9" * 5000}, {"kind": "٣"}, {"kind": "²"}):
        with pytest.raises(ValidationFailed):
            decode_json_document(json.loads(otlp(**span)))
