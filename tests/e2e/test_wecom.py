"""The grid group's WeCom robot: WeCom's side (tests/support/wecom_peer.py) encrypts
callbacks as WeCom does and posts them to intake, which files them; routing, a
separate process, places each in the grid whose WeChat group it came from."""
import time
import uuid
from xml.etree import ElementTree

import pytest
import requests

from devstack import wecom as devstack_wecom
from devstack.demo_county import build_county
from services.intake import wecom
from tests.support.polling import eventually
from tests.support.services import authorized_session, running_service
from tests.support.wecom_peer import WeComPeer, group_event, group_text, new_encoding_aes_key

pytestmark = pytest.mark.e2e

CENTER = "county-center"
PUBLIC_URL = "https://wangge.example.gov.cn"


def one_community():
    """The demo county cut to its first community: two grids, each with its WeChat group."""
    county = build_county(version=1)
    town = county["towns"][0]
    return {**county, "towns": [{**town, "communities": town["communities"][:1]}]}


COUNTY = one_community()
GRID_A, GRID_B = COUNTY["towns"][0]["communities"][0]["grids"][:2]
# the id WeCom gives each grid's group (its ChatId), as the registry lists it
GROUP_A, GROUP_B = GRID_A["wechat_groups"][0], GRID_B["wechat_groups"][0]


@pytest.fixture(scope="module")
def robot(module_amqp_uri, mongo_uri, tmp_path_factory):
    """``(intake, WeCom's side)``: intake set up with a group robot's callback secrets."""
    token, key = uuid.uuid4().hex[:16], new_encoding_aes_key()
    log_dir = tmp_path_factory.mktemp("logs")
    with running_service("routing", amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, log_dir=log_dir) as routing:
        loaded = routing.as_admin.put(routing.url("/api/v1/registry"), json=COUNTY, timeout=60)
        assert loaded.status_code == 200, loaded.text
        env = {"ROUTING_URL": routing.base_url, "WECOM_CALLBACK_TOKEN": token, "WECOM_ENCODING_AES_KEY": key,
               "WANGGE_PUBLIC_URL": PUBLIC_URL}
        with running_service("intake", amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, log_dir=log_dir, extra_env=env) as intake:
            intake.log_dir = log_dir
            yield intake, WeComPeer(token, key)


def post_callback(intake, peer, message_xml):
    query, body = peer.callback(message_xml)
    return requests.post(intake.url("/wecom/callback"), params=query, data=body.encode("utf-8"),
                         headers={"Content-Type": "text/xml"}, timeout=10)


def reply_of(peer, answer):
    """The robot's reply as the group reads it: ``(text, the members it @-mentions)``."""
    assert answer.status_code == 200, answer.text
    reply = ElementTree.fromstring(peer.read_reply(answer.content))
    assert reply.findtext("MsgType") == "text"
    return reply.findtext("Text/Content"), [item.text for item in reply.findall("Text/MentionedList/Item")]


def filed_under(intake, msg_id):
    """The requests filed for a WeCom message, read back as the command centre does."""
    found = authorized_session(CENTER).get(intake.url("/api/v1/requests"), params={"source": "wechat_group", "external_ref": msg_id},
                                           timeout=10)
    assert found.status_code == 200, found.text
    return found.json()["items"]


def test_wecom_verifies_the_callback_url(robot):
    intake, peer = robot
    echo = str(uuid.uuid4().int)
    answer = requests.get(intake.url("/wecom/callback"), params=peer.verification(echo), timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.text == echo


def test_a_callback_with_a_bad_signature_is_refused_and_files_nothing(robot):
    intake, peer = robot
    msg_id = uuid.uuid4().hex
    query, body = peer.callback(group_text("@网格助手 小区门口垃圾没人清运", chat_id=GROUP_B, msg_id=msg_id))
    forged = requests.post(intake.url("/wecom/callback"), params={**query, "msg_signature": "f" * 40}, data=body.encode(), timeout=10)
    assert forged.status_code == 403, forged.text
    assert forged.json()["error"] == "bad_signature"
    assert "msg_signature" in forged.json()["fields"]
    verification = {**peer.verification("echo"), "nonce": "another-nonce"}
    assert requests.get(intake.url("/wecom/callback"), params=verification, timeout=10).status_code == 403
    assert filed_under(intake, msg_id) == []


def test_a_callback_signed_an_hour_ago_is_refused_naming_timestamp_and_files_nothing(robot):
    """A captured callback replayed later: its signature matches, its time does not."""
    intake, peer = robot
    msg_id = uuid.uuid4().hex
    timestamp, nonce = str(int(time.time()) - 3600), "n0nce"
    encrypted = peer.encrypt(group_text("@网格助手 小区门口垃圾没人清运", chat_id=GROUP_B, msg_id=msg_id))
    replayed = requests.post(intake.url("/wecom/callback"), timeout=10,
                             params={"msg_signature": peer.signature(timestamp, nonce, encrypted), "timestamp": timestamp, "nonce": nonce},
                             data=f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>".encode())
    assert replayed.status_code == 403, replayed.text
    assert replayed.json()["error"] == "stale_timestamp" and set(replayed.json()["fields"]) == {"timestamp"}
    assert filed_under(intake, msg_id) == []


def test_an_encrypted_group_message_becomes_a_request_located_in_the_groups_grid(robot):
    intake, peer = robot
    msg_id = f"CAIQ{uuid.uuid4().hex}"
    answer = post_callback(intake, peer, group_text("@网格助手\u20053号楼门口路灯不亮，晚上很黑", chat_id=GROUP_B, msg_id=msg_id,
                                                    user_id="zhangsan", name="张三丰"))
    text, mentioned = reply_of(peer, answer)
    [filed] = filed_under(intake, msg_id)
    tracking_no = filed["tracking_no"]
    assert tracking_no in text
    assert f"{PUBLIC_URL}/track/{tracking_no}" in text
    assert mentioned == ["zhangsan"]
    assert filed["channel"] == "wechat_group"
    assert filed["text"] == "3号楼门口路灯不亮，晚上很黑"
    assert filed["reporter"] == {"name": "张三丰"}

    centre = authorized_session(CENTER)
    view = eventually(lambda: (lambda v: v if v.get("grid_id") else None)(
        centre.get(intake.url(f"/api/v1/requests/{tracking_no}"), timeout=10).json()), timeout=20)
    assert view["grid_id"] == GRID_B["id"]
    assert view["grid_name"] == GRID_B["name"]


def test_the_demo_robot_of_make_run_files_a_group_message_in_the_groups_grid(robot, tmp_path, monkeypatch):
    """``python -m devstack wecom``: this machine's robot secrets are made once, kept readable by their owner
    only, and are secrets intake opens callbacks with; a message sealed by it (with wechatpy) is filed in the
    group's grid and the robot's answer read back."""
    intake, peer = robot
    monkeypatch.delenv("WECOM_CALLBACK_TOKEN", raising=False)
    monkeypatch.delenv("WECOM_ENCODING_AES_KEY", raising=False)
    monkeypatch.setattr(devstack_wecom, "SETTINGS_PATH", tmp_path / "wecom.json")
    made = devstack_wecom.robot_settings()
    assert devstack_wecom.robot_settings() == made and (tmp_path / "wecom.json").stat().st_mode & 0o077 == 0
    # intake, set up with them, opens what the demo seals with them
    callback = wecom.WeComCallback(made["WECOM_CALLBACK_TOKEN"], made["WECOM_ENCODING_AES_KEY"], "", PUBLIC_URL, 300)
    message = devstack_wecom.group_message("楼道灯坏了", GROUP_A, "lin-xiansheng", "林先生", "1")
    query, body = devstack_wecom.seal(message, made["WECOM_CALLBACK_TOKEN"], made["WECOM_ENCODING_AES_KEY"])
    assert wecom.read_message(callback.open_message(query, body, int(time.time()))).chat_id == GROUP_A
    monkeypatch.setenv("WECOM_CALLBACK_TOKEN", "a-real-robots")
    assert devstack_wecom.robot_settings() == {}  # an operator's own robot is left to intake's settings

    msg_id = str(uuid.uuid4().int % 10**19)
    answer = devstack_wecom.send("东门的垃圾桶满了好几天", intake.url("/wecom/callback"), peer.token, peer.encoding_aes_key,
                                 group=GROUP_A, message_id=msg_id)
    [filed] = filed_under(intake, msg_id)
    assert filed["tracking_no"] in answer and filed["reporter"] == {"name": "林先生"} and filed["text"] == "东门的垃圾桶满了好几天"
    view = eventually(lambda: (lambda v: v if v.get("grid_id") else None)(
        authorized_session(CENTER).get(intake.url(f"/api/v1/requests/{filed['tracking_no']}"), timeout=10).json()), timeout=20)
    assert view["grid_id"] == GRID_A["id"]


def test_wecoms_resends_of_a_message_file_it_once_and_get_the_same_tracking_number(robot):
    intake, peer = robot
    msg_id = f"CAIQ{uuid.uuid4().hex}"
    message = group_text("@网格助手 绿洲小区东门下水道堵了，污水漫到路上", chat_id=GROUP_A, msg_id=msg_id, user_id="lisi", name="李四")
    replies = [reply_of(peer, post_callback(intake, peer, message))[0] for _ in range(3)]
    [filed] = filed_under(intake, msg_id)
    assert replies == [replies[0]] * 3
    assert filed["tracking_no"] in replies[0]


def test_messages_that_are_not_requests_are_answered_and_file_nothing(robot):
    intake, peer = robot
    single, empty = uuid.uuid4().hex, uuid.uuid4().hex
    text, _ = reply_of(peer, post_callback(intake, peer, group_text("@网格助手 路灯坏了", chat_id="wo-single", msg_id=single,
                                                                    chat_type="single")))
    assert text == wecom.ONLY_IN_GROUPS
    text, _ = reply_of(peer, post_callback(intake, peer, group_text("@网格助手", chat_id=GROUP_B, msg_id=empty)))
    assert text == wecom.EMPTY_TEXT
    added = post_callback(intake, peer, group_event("add_to_chat", chat_id=GROUP_B, msg_id=uuid.uuid4().hex))
    assert added.status_code == 200
    assert added.content == b""
    assert filed_under(intake, single) == filed_under(intake, empty) == []


def test_a_callback_that_does_not_decrypt_is_refused_as_json(robot):
    intake, peer = robot
    stranger = WeComPeer(peer.token, new_encoding_aes_key())
    answer = post_callback(intake, stranger, group_text("@网格助手 路灯坏了", chat_id=GROUP_B, msg_id=uuid.uuid4().hex))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "undecryptable"
    assert "Encrypt" in answer.json()["fields"]


def test_nothing_personal_from_wecom_reaches_intakes_log(robot):
    intake, peer = robot
    msg_id = f"CAIQ{uuid.uuid4().hex}"
    sender = {"user_id": "wangwu-8842", "name": "王五六"}
    reply_of(peer, post_callback(intake, peer, group_text("@网格助手 樟城镇政府门口井盖松动", chat_id=GROUP_A, msg_id=msg_id, **sender)))
    reply_of(peer, post_callback(intake, peer, group_text("@网格助手 井盖松动", chat_id="wo-single", msg_id=uuid.uuid4().hex,
                                                          chat_type="single", **sender)))
    assert filed_under(intake, msg_id)
    log = "".join(path.read_text(encoding="utf-8") for path in intake.log_dir.glob("intake-*.log"))
    assert "request filed" in log
    for personal in ("wangwu-8842", "王五六", "井盖松动"):
        assert personal not in log


def test_without_wecoms_secrets_the_callback_answers_404(intake):
    answer = requests.get(intake.url("/wecom/callback"), params={"msg_signature": "x", "timestamp": "1", "nonce": "n", "echostr": "e"},
                          timeout=10)
    assert answer.status_code == 404
    assert answer.json()["error"] == "wecom_not_configured"
