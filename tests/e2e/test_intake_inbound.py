"""The wangge.inbound exchange, the dead-letter queues and request_received, end to end."""
import json
import uuid
from datetime import timedelta

import requests
from prometheus_client.parser import text_string_to_metric_families
from kombu import Connection

from integration.publish_example import publish_request
from tests.e2e.conftest import inbound_body
from tests.support.broker import drain, watch_queue
from services.intake import submissions
from services.intake.inbound import PUBLISHED_UNDER_HEADER
from tests.support.polling import eventually
from wangge import admin, events, topology

COMMAND_CENTRE = "county-center"


def find_by_ref(intake, external_ref, source="hotline12345"):
    """As the integrator would look up its own requests (the command centre for other sources)."""
    session = intake.as_user("integrator-hotline12345" if source == "hotline12345" else COMMAND_CENTRE)
    response = session.get(intake.url("/api/v1/requests"), params={"source": source, "external_ref": external_ref}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def full_view(intake, tracking_no):
    return intake.as_user(COMMAND_CENTRE).get(intake.url(f"/api/v1/requests/{tracking_no}"), timeout=10).json()


def dead_letters(amqp_uri, queue, message_ids):
    return [entry for entry in admin.iter_dead_letters(amqp_uri, queue) if entry["message_id"] in message_ids]


def test_inbound_request_is_found_by_its_external_ref(intake, publish_inbound):
    body = inbound_body()
    publish_inbound(body)
    items = eventually(lambda: find_by_ref(intake, body["external_ref"]))
    assert len(items) == 1
    assert items[0]["channel"] == "external"
    assert items[0]["text"] == body["text"]
    assert items[0]["tracking_no"].startswith("YT-")


def duplicates_seen(intake):
    """Messages intake recognised as already filed (its own counter, from /metrics)."""
    for family in text_string_to_metric_families(requests.get(intake.url("/metrics"), timeout=10).text):
        for sample in family.samples:
            if sample.name == "wangge_intake_requests_total" and sample.labels == {"channel": "external", "outcome": "duplicate"}:
                return sample.value
    return 0.0


def test_same_message_id_twice_files_one_request(intake, publish_inbound):
    before = duplicates_seen(intake)
    body = inbound_body()
    message_id = publish_inbound(body)
    publish_inbound(body, message_id=message_id)
    # the second copy was handled (and recognised) whatever order intake's workers took them in
    eventually(lambda: duplicates_seen(intake) >= before + 1)
    assert len(find_by_ref(intake, body["external_ref"])) == 1


def test_another_systems_message_with_the_same_message_id_is_filed_too(intake, publish_inbound):
    hotline = inbound_body()
    message_id = publish_inbound(hotline)
    wechat = inbound_body(source="wechat")
    publish_inbound(wechat, message_id=message_id, source="wechat")
    assert eventually(lambda: find_by_ref(intake, wechat["external_ref"], source="wechat"))
    # intake handles messages at once, so the first published may be filed second
    assert len(eventually(lambda: find_by_ref(intake, hotline["external_ref"]))) == 1


def test_a_message_whose_body_names_another_source_than_its_routing_key_is_dead_lettered(intake, publish_inbound, amqp_uri):
    body = inbound_body(source="wechat")
    message_id = publish_inbound(body, source="hotline12345")
    [dead] = eventually(lambda: dead_letters(amqp_uri, topology.INBOUND_DEAD_LETTER_QUEUE, {message_id}))
    assert set(json.loads(dead["reason"].split(": ", 1)[1])) == {"source"}
    assert "request.hotline12345" in dead["reason"]
    # replayed, it is still the message hotline12345 sent
    list(admin.replay_dead_letters(amqp_uri, topology.INBOUND_DEAD_LETTER_QUEUE, {dead["id"]}))
    [again] = eventually(lambda: [entry for entry in dead_letters(amqp_uri, topology.INBOUND_DEAD_LETTER_QUEUE, {message_id})
                                  if entry["id"] != dead["id"]])
    assert "request.hotline12345" in again["reason"]
    assert find_by_ref(intake, body["external_ref"], source="wechat") == []
    assert find_by_ref(intake, body["external_ref"]) == []


def test_a_system_cannot_name_its_source_in_the_header_that_carries_it_through_retries(intake, amqp_uri):
    body = inbound_body(source="wechat")
    message_id = uuid.uuid4().hex
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        connection.Producer(exchange=topology.inbound_exchange()).publish(
            json.dumps(body).encode(), routing_key="request.hotline12345", content_type="application/json",
            message_id=message_id, headers={PUBLISHED_UNDER_HEADER: "request.wechat"})
    [dead] = eventually(lambda: dead_letters(amqp_uri, topology.INBOUND_DEAD_LETTER_QUEUE, {message_id}))
    assert "request.hotline12345" in dead["reason"]
    assert find_by_ref(intake, body["external_ref"], source="wechat") == []


def test_invalid_message_is_dead_lettered_with_its_reason_and_the_queue_keeps_flowing(intake, publish_inbound, amqp_uri):
    before, after = inbound_body(), inbound_body()
    publish_inbound(before)
    bad_id = publish_inbound(inbound_body(text="", location={"lon": 200, "lat": 25}))
    publish_inbound(after)

    assert eventually(lambda: find_by_ref(intake, before["external_ref"]))
    assert eventually(lambda: find_by_ref(intake, after["external_ref"]))
    [dead] = eventually(lambda: dead_letters(amqp_uri, topology.INBOUND_DEAD_LETTER_QUEUE, {bad_id}))
    assert dead["reason"].startswith("invalid message")
    reason = json.loads(dead["reason"].split(": ", 1)[1])
    assert set(reason) == {"text", "location"}
    assert dead["queue"] == topology.INBOUND_QUEUE_NAME


def test_messages_that_are_not_json_or_lack_a_message_id_are_dead_lettered(intake, amqp_uri):
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = connection.Producer(exchange=topology.inbound_exchange())
        not_json = uuid.uuid4().hex
        producer.publish(b"{broken", routing_key="request.hotline12345", content_type="application/json", message_id=not_json)
        not_utf8 = uuid.uuid4().hex
        producer.publish(b"\xff\xfe{}", routing_key="request.hotline12345", content_type="application/json", message_id=not_utf8)
        no_id_ref = f"HL-{uuid.uuid4().hex[:8]}"
        producer.publish(json.dumps({"external_ref": no_id_ref, **inbound_body(external_ref=no_id_ref)}).encode(), routing_key="request.hotline12345", content_type="application/json")

    dead = eventually(lambda: (lambda found: found if len(found) == 2 else None)(
        dead_letters(amqp_uri, topology.INBOUND_DEAD_LETTER_QUEUE, {not_json, not_utf8})))
    assert all("not UTF-8 JSON" in entry["reason"] for entry in dead)
    no_id = eventually(lambda: [e for e in admin.iter_dead_letters(amqp_uri, topology.INBOUND_DEAD_LETTER_QUEUE) if no_id_ref in e["body"]])
    assert "message_id" in no_id[0]["reason"]
    assert find_by_ref(intake, no_id_ref) == []


def test_a_hundred_messages_with_repeats_and_invalid_ones_file_85_requests_and_dead_letter_5(intake, publish_inbound, amqp_uri):
    batch = uuid.uuid4().hex[:8]
    sent_ids, invalid_ids, refs = [], set(), set()
    for n in range(85):
        body = inbound_body(external_ref=f"B{batch}-{n:03d}")
        refs.add(body["external_ref"])
        sent_ids.append((publish_inbound(body), body))
    for message_id, body in sent_ids[:10]:  # ten resends of earlier messages
        publish_inbound(body, message_id=message_id)
    for n in range(5):
        invalid_ids.add(publish_inbound(inbound_body(text="", external_ref=f"B{batch}-bad-{n}")))

    def all_filed():
        counts = {ref: len(find_by_ref(intake, ref)) for ref in refs}
        return counts if all(counts.values()) else None

    counts = eventually(all_filed, timeout=60)
    assert sum(counts.values()) == 85 and set(counts.values()) == {1}
    dead = eventually(lambda: (lambda found: found if len(found) == 5 else None)(
        dead_letters(amqp_uri, topology.INBOUND_DEAD_LETTER_QUEUE, invalid_ids)), timeout=30)
    assert all("text" in json.loads(entry["reason"].split(": ", 1)[1]) for entry in dead)


def test_filed_request_is_announced_as_request_received(intake, amqp_uri):
    with watch_queue(amqp_uri, topology.events_exchange("intake"), events.REQUEST_RECEIVED) as watch:
        tracking_no = requests.post(intake.url("/api/v1/requests"), json={"channel": "web", "text": "小区垃圾没人清运"}, timeout=10).json()["tracking_no"]
        received = [json.loads(m.body) for m in drain(amqp_uri, watch, timeout=5)]
    # once, by event id: an announcement slower than its claim is made again under the same id
    mine = list({e["event_id"]: e for e in received if e["data"]["tracking_no"] == tracking_no}.values())
    assert len(mine) == 1
    envelope = events.read_event(events.REQUEST_RECEIVED, mine[0])
    assert envelope["data"]["text"] == "小区垃圾没人清运"
    assert envelope["schema_version"] == events.SCHEMA_VERSION


def test_request_stored_while_the_event_cannot_be_published_is_announced_once_it_can(intake, amqp_uri):
    """With nowhere to route request_received, publishing fails after the store;
    the request stays pending and the timer announces it once a queue is bound."""
    routing_queue = topology.event_queue(topology.SUBSCRIPTIONS[0])
    with Connection(amqp_uri) as connection:
        routing_queue(connection.default_channel).delete()
    # No queue is bound to intake.events/request_received now.
    response = requests.post(intake.url("/api/v1/requests"), json={"channel": "hotline", "text": "停水三天了"}, timeout=10)
    assert response.status_code == 201  # stored: the resident has a tracking number
    tracking_no = response.json()["tracking_no"]

    with watch_queue(amqp_uri, topology.events_exchange("intake"), events.REQUEST_RECEIVED) as watch:
        with Connection(amqp_uri) as connection:
            routing_queue(connection.default_channel).declare()
        announced = drain(amqp_uri, watch, timeout=15, expected=1)
    mine = [m for m in announced if json.loads(m.body)["data"]["tracking_no"] == tracking_no]
    assert len(mine) == 1


def publish_case_event(amqp_uri, data):
    return publish_event(amqp_uri, events.build_event(events.CASE_STATUS_CHANGED, data))


def publish_event(amqp_uri, event):
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        connection.Producer().publish(
            event, exchange=topology.events_exchange("routing"), routing_key=events.CASE_STATUS_CHANGED,
            serializer="json", delivery_mode=2,
        )
    return event


def case_change(request, status, previous, at, **extra):
    return {
        "case_id": f"C-{request['request_id'][:8]}", "request_id": request["request_id"],
        "tracking_no": request["tracking_no"], "status": status, "previous_status": previous,
        "at": at, "grid_id": "YT-ZC-NM-03", "grid_name": "南门社区03网格", "category": "street_lighting",
        "category_name": "路灯", "actor": "routing", **extra,
    }


def dead_case_event(amqp_uri, event_id):
    for entry in admin.iter_dead_letters(amqp_uri, topology.dead_letter_queue_name("intake")):
        if event_id in entry["body"]:
            return entry
    return None


def test_case_status_changes_from_routing_show_in_the_tracking_lookup(intake, amqp_uri):
    request = requests.post(intake.url("/api/v1/requests"), json={"channel": "wechat_group", "text": "路灯不亮"}, timeout=10).json()
    now = events.utcnow()
    acknowledged = publish_case_event(amqp_uri, case_change(request, "acknowledged", "assigned", now + timedelta(seconds=2)))
    publish_case_event(amqp_uri, case_change(request, "assigned", "received", now + timedelta(seconds=1), note="分派给网格员"))
    publish_event(amqp_uri, acknowledged)  # redelivered

    def view():
        found = full_view(intake, request["tracking_no"])
        return found if len(found["history"]) == 3 else None

    found = eventually(view)
    assert found["status"] == "acknowledged"  # the latest change wins, whatever the arrival order
    assert [entry["status"] for entry in found["history"]] == ["received", "assigned", "acknowledged"]
    assert found["case_id"] == f"C-{request['request_id'][:8]}"
    assert found["grid_id"] == "YT-ZC-NM-03" and found["category"] == "street_lighting"
    public = requests.get(intake.url(f"/api/v1/requests/{request['tracking_no']}"), timeout=10).json()
    assert (public["status_words"], public["grid_name"], public["category_name"]) == ("网格员已响应", "南门社区03网格", "路灯")
    assert [entry["words"] for entry in public["history"]] == ["已受理", "已分派到网格办理", "网格员已响应"]


def test_failing_case_event_is_retried_then_dead_lettered_and_can_be_replayed(intake, intake_store, amqp_uri):
    # A change of a request intake does not have (yet): it fails until the request is there.
    future = {"request_id": uuid.uuid4().hex, "tracking_no": f"YT-20261129-{uuid.uuid4().hex[:4].upper()}-TEST"}
    event = publish_case_event(amqp_uri, case_change(future, "assigned", "received", events.utcnow() + timedelta(seconds=5)))

    dead = eventually(lambda: dead_case_event(amqp_uri, event["event_id"]), timeout=40)
    assert dead["attempts"] == 3  # RETRY_MAX_ATTEMPTS in the test tuning
    assert "UnknownRequest" in dead["reason"]
    # one log line per failure, with its reason; no second traceback from nameko
    about_it = [line for line in intake.process.log_path.read_text().splitlines() if future["tracking_no"] in line]
    assert [json.loads(line)["message"] for line in about_it] == ["handler failed, will retry"] * 2 + ["message dead-lettered"]
    assert "error handling worker" not in intake.process.log_path.read_text()

    # tracking numbers cannot be predicted, so the request is put in the store as no API can
    intake_store.insert_request(submissions.new_request_document(
        {"text": "现在有了"}, tracking_no=future["tracking_no"], channel="web", source="web", idempotency_key=None,
        now=events.utcnow(), claim_for=timedelta(seconds=1)))
    replayed = list(admin.replay_dead_letters(amqp_uri, topology.dead_letter_queue_name("intake"), {dead["id"]}))
    assert [entry["id"] for entry in replayed] == [dead["id"]]

    # the status is written before the history entry: wait for both
    found = eventually(lambda: (lambda v: v if v["history"][-1]["status"] == "assigned" else None)(
        full_view(intake, future["tracking_no"])))
    assert found["status"] == "assigned"


def test_invalid_case_event_is_dead_lettered_at_once_naming_the_field(intake, amqp_uri):
    envelope = {"event_id": uuid.uuid4().hex, "event_type": events.CASE_STATUS_CHANGED, "occurred_at": events.utcnow().isoformat(),
                "schema_version": 1, "data": {"case_id": "C-1", "request_id": "r", "tracking_no": "YT-1", "status": "teleported", "at": events.utcnow().isoformat()}}
    publish_event(amqp_uri, envelope)

    dead = eventually(lambda: dead_case_event(amqp_uri, envelope["event_id"]), timeout=40)
    assert dead["attempts"] == 1  # validation failures are not retried
    assert json.loads(dead["reason"].split(": ", 1)[1]) == {"data": {"status": ["Must be one of: " + ", ".join(events.CASE_STATUSES) + "."]}}


def test_the_example_publisher_reuses_one_channel_for_many_requests(intake, amqp_uri):
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        for _ in range(50):
            publish_request(connection, inbound_body(), message_id=uuid.uuid4().hex, source="hotline12345")
        open_channels = [number for number in connection.connection.channels if number != 0]  # 0: the connection's own
        assert len(open_channels) == 1
