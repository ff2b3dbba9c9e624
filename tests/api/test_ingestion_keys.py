"""What an ingestion key (write-only) may do, and what its answers may carry: only what it sent
and ids, never stored data, and nothing that tells which ids exist."""

from __future__ import annotations

import uuid

from tests.helpers import Api


def test_starting_a_stored_session_returns_only_what_the_key_sent(api: Api, ingest: Api) -> None:
    sid = str(uuid.uuid4())
    secret = {"session_name": "private", "metadata": {"secret": "s3cret"}, "user_properties": {"email": "a@b.c"}}
    assert api.post("/v1/sessions", json={"session_id": sid, **secret}).status_code == 200
    api.post(f"/v1/sessions/{sid}/events/batch", json={"events": [{"event_type": "tool", "inputs": {}}]})
    for path, body in (("/v1/sessions", {"session_id": sid, "metadata": {"mine": 1}}),
                       ("/session/start", {"session": {"session_id": sid, "metadata": {"mine": 1}}})):
        reply = ingest.post(path, json=body)
        assert reply.status_code == 200, reply.text
        answer = reply.json()
        assert answer["session_id"] == sid and answer["metadata"] == {"mine": 1}
        assert "s3cret" not in reply.text and "a@b.c" not in reply.text and "private" not in reply.text
        assert answer["children_ids"] == []
    # The write itself was merged as for any key.
    stored = api.get(f"/v1/events/{sid}").json()["event"]
    assert stored["metadata"] == {"secret": "s3cret", "mine": 1} and stored["event_name"] == "private"
    # A project key still gets the stored session back.
    merged = api.post("/v1/sessions", json={"session_id": sid, "metadata": {"more": 2}}).json()
    assert merged["metadata"] == {"secret": "s3cret", "mine": 1, "more": 2}


def test_updates_do_not_tell_an_ingestion_key_which_ids_exist(api: Api, ingest: Api) -> None:
    stored_id = api.post("/v1/events", json={"event_type": "tool", "inputs": {}}).json()["event_id"]
    unknown = str(uuid.uuid4())
    for eid in (stored_id, unknown):
        reply = ingest.put(f"/v1/events/{eid}", json={"metadata": {"k": "v"}})
        assert reply.status_code == 200 and reply.json() == {"success": True}, reply.text
    assert api.get(f"/v1/events/{stored_id}").json()["event"]["metadata"] == {"k": "v"}
    # The update for the unknown id was kept: it applies when that event arrives.
    api.post("/v1/events", json={"event_id": unknown, "event_type": "tool", "inputs": {}})
    assert api.get(f"/v1/events/{unknown}").json()["event"]["metadata"] == {"k": "v"}
    # A project key may read, so it is told.
    assert api.put(f"/v1/events/{uuid.uuid4()}", json={"metadata": {}}).status_code == 404
