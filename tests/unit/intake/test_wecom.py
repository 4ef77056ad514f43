"""The grid group's WeCom robot: callbacks as WeCom's own peer encrypts them, read,
decided on and answered (services/intake/wecom.py)."""
import hmac
import time
from xml.etree import ElementTree

import pytest

from services.intake import wecom
from services.intake.schemas import MAX_TEXT_CHARS
from tests.support.wecom_peer import WeComPeer, group_event, group_text, new_encoding_aes_key

# WeCom's published example of its encryption (加解密方案说明): a CorpID as receive id.
SAMPLE_TOKEN, SAMPLE_KEY, SAMPLE_CORP_ID = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7"
SAMPLE_ECHOSTR = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
SAMPLE_VERIFICATION = {"msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "timestamp": "1409659589", "nonce": "263014780",
                       "echostr": SAMPLE_ECHOSTR}
PUBLIC_URL = "https://wangge.example.gov.cn"
MAX_CLOCK_SKEW = 300
GROUP = "wrkSFfCgAALFgnrSsWU38puiv4yvExuw"


@pytest.fixture
def robot():
    """A group robot's settings (empty receive id) and WeCom's side of them."""
    token, key = "tok3n", new_encoding_aes_key()
    return wecom.WeComCallback(token, key, "", PUBLIC_URL, MAX_CLOCK_SKEW), WeComPeer(token, key)


def opened(robot, message_xml):
    callback, peer = robot
    query, body = peer.callback(message_xml)
    return wecom.read_message(callback.open_message(query, body.encode("utf-8"), time.time()))


# -- the encryption, as WeCom does it ---------------------------------------------------

def test_the_peer_reproduces_wecoms_published_signature_and_intake_reads_the_same_echo():
    peer = WeComPeer(SAMPLE_TOKEN, SAMPLE_KEY, SAMPLE_CORP_ID)
    assert peer.signature("1409659589", "263014780", SAMPLE_ECHOSTR) == SAMPLE_VERIFICATION["msg_signature"]
    echo, receive_id = peer.decrypt(SAMPLE_ECHOSTR)
    assert receive_id == SAMPLE_CORP_ID
    callback = wecom.WeComCallback(SAMPLE_TOKEN, SAMPLE_KEY, SAMPLE_CORP_ID, PUBLIC_URL, MAX_CLOCK_SKEW)
    assert callback.verify_url(SAMPLE_VERIFICATION, 1409659589 + 60) == echo


def test_url_verification_answers_the_plaintext_of_echostr(robot):
    callback, peer = robot
    assert callback.verify_url(peer.verification("1616140317555161061"), time.time()) == "1616140317555161061"


def test_a_signature_that_does_not_match_is_refused_naming_msg_signature(robot):
    callback, peer = robot
    query, body = peer.callback(group_text("@网格助手 路灯坏了", chat_id=GROUP, msg_id="m-1"))
    with pytest.raises(wecom.BadSignature) as refused:
        callback.open_message({**query, "msg_signature": "0" * 40}, body.encode(), time.time())
    assert refused.value.http_status == 403
    assert set(refused.value.fields) == {"msg_signature"}
    with pytest.raises(wecom.BadSignature):
        callback.verify_url({**peer.verification("echo"), "nonce": "another"}, time.time())


def test_the_signature_is_compared_in_constant_time(robot, monkeypatch):
    callback, peer = robot
    compared, constant_time = [], hmac.compare_digest

    def compare_digest(expected, given):
        compared.append(given)
        return constant_time(expected, given)

    monkeypatch.setattr(wecom.hmac, "compare_digest", compare_digest)
    query, body = peer.callback(group_text("@网格助手 路灯坏了", chat_id=GROUP, msg_id="m-1"))
    callback.open_message(query, body.encode(), time.time())
    assert compared == [query["msg_signature"].encode()]
    with pytest.raises(wecom.BadSignature):  # not ASCII: refused like any other mismatch
        callback.open_message({**query, "msg_signature": "签名" * 20}, body.encode(), time.time())


@pytest.mark.parametrize("skew", [-MAX_CLOCK_SKEW - 60, MAX_CLOCK_SKEW + 60])
def test_a_callback_whose_timestamp_is_not_recent_is_refused_naming_timestamp(robot, skew):
    """A captured callback replayed later is refused, however well it is signed."""
    callback, peer = robot
    query, body = peer.callback(group_text("@网格助手 路灯坏了", chat_id=GROUP, msg_id="m-1"))
    with pytest.raises(wecom.StaleTimestamp) as refused:
        callback.open_message(query, body.encode(), int(query["timestamp"]) - skew)
    assert refused.value.http_status == 403
    assert set(refused.value.fields) == {"timestamp"}
    with pytest.raises(wecom.StaleTimestamp):
        callback.verify_url(peer.verification("echo"), time.time() - skew)
    assert callback.open_message(query, body.encode(), int(query["timestamp"]) - skew // 10)


def test_a_message_encrypted_with_another_key_or_for_another_receive_id_is_undecryptable():
    token, key = "tok3n", new_encoding_aes_key()
    callback = wecom.WeComCallback(token, key, "", PUBLIC_URL, MAX_CLOCK_SKEW)
    for stranger in (WeComPeer(token, new_encoding_aes_key()), WeComPeer(token, key, "wx-another-corp")):
        query, body = stranger.callback(group_text("路灯坏了", chat_id=GROUP, msg_id="m-1"))
        with pytest.raises(wecom.Undecryptable) as refused:
            callback.open_message(query, body.encode(), time.time())
        assert refused.value.http_status == 400
        assert set(refused.value.fields) == {"Encrypt"}


@pytest.mark.parametrize("body", [b"not xml", b"<xml><ToUserName>x</ToUserName></xml>", b"<other><Encrypt>x</Encrypt></other>"])
def test_a_body_that_is_not_wecoms_envelope_is_refused_naming_body(robot, body):
    callback, _ = robot
    with pytest.raises(wecom.Undecryptable) as refused:
        callback.open_message({"msg_signature": "x", "timestamp": "1", "nonce": "n"}, body, time.time())
    assert set(refused.value.fields) == {"body"}


def test_a_signed_ciphertext_that_is_not_base64_blocks_is_undecryptable(robot):
    callback, peer = robot
    timestamp, nonce = peer.fresh()
    garbage = "bm90IGJsb2Nrcw=="
    query = {"msg_signature": peer.signature(timestamp, nonce, garbage), "timestamp": timestamp, "nonce": nonce}
    with pytest.raises(wecom.Undecryptable):
        callback.open_message(query, f"<xml><Encrypt>{garbage}</Encrypt></xml>".encode(), time.time())


def test_the_passive_reply_decrypts_at_wecom_to_a_text_mentioning_the_sender(robot):
    callback, peer = robot
    sealed = callback.seal(wecom.reply_xml("已受理 <YT-1> & 好", mention="zhangsan"), "n0nce")
    reply = ElementTree.fromstring(peer.read_reply(sealed))
    assert reply.findtext("MsgType") == "text"
    assert reply.findtext("Text/Content") == "已受理 <YT-1> & 好"
    assert [item.text for item in reply.findall("Text/MentionedList/Item")] == ["zhangsan"]


# -- reading and deciding -----------------------------------------------------------------

def test_a_group_message_becomes_a_request_of_the_group_by_its_sender(robot):
    message = opened(robot, group_text("@网格助手\u2005南湖花园二区路灯不亮 @林师傅 麻烦看看", chat_id=GROUP, msg_id="CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=",
                                       user_id="zhangsan", name="张三"))
    decision = wecom.decide(message)
    assert decision.reply is None
    assert decision.fields == {"text": "南湖花园二区路灯不亮 @林师傅 麻烦看看", "wechat_group_id": GROUP,
                               "external_ref": "CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=", "reporter": {"name": "张三"}}
    assert wecom.idempotency_key(message) == "wecom:CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI="
    assert message.sender_id == "zhangsan"


def test_a_mixed_message_brings_its_texts_and_its_pictures(robot):
    message = opened(robot, f"""<xml><MsgId>m-2</MsgId><ChatId>{GROUP}</ChatId><ChatType>group</ChatType>
      <From><UserId>lisi</UserId><Name>李四</Name></From><MsgType>mixed</MsgType>
      <MixedMessage>
        <MsgItem><MsgType>text</MsgType><Text><Content><![CDATA[@网格助手 楼道堆满杂物]]></Content></Text></MsgItem>
        <MsgItem><MsgType>image</MsgType><Image><ImageUrl><![CDATA[http://p.qpic.cn/pic_wework/1/0]]></ImageUrl></Image></MsgItem>
      </MixedMessage></xml>""")
    fields = wecom.decide(message).fields
    assert fields["text"] == "楼道堆满杂物"
    assert fields["media"] == ["http://p.qpic.cn/pic_wework/1/0"]


@pytest.mark.parametrize("message_xml, reply", [
    (group_text("@网格助手 路灯坏了", chat_id="wo-single", msg_id="m-3", chat_type="single"), wecom.ONLY_IN_GROUPS),
    (group_text("@网格助手", chat_id=GROUP, msg_id="m-4"), wecom.EMPTY_TEXT),
    (group_text("@网格助手   ", chat_id=GROUP, msg_id="m-5"), wecom.EMPTY_TEXT),
    (group_text("", chat_id=GROUP, msg_id="m-6", msg_type="image"), wecom.ONLY_TEXT),
    (group_text("@网格助手 " + "路" * (MAX_TEXT_CHARS + 1), chat_id=GROUP, msg_id="m-7"), wecom.NOT_FILEABLE),
    (group_text("@网格助手 路灯坏了", chat_id="g" * 65, msg_id="m-8"), wecom.NOT_FILEABLE),
    (group_event("add_to_chat", chat_id=GROUP, msg_id="m-9"), None),
])
def test_what_is_not_a_request_files_nothing_and_gets_a_reply_that_says_what_to_do(robot, message_xml, reply):
    decision = wecom.decide(opened(robot, message_xml))
    assert decision.fields is None
    assert decision.reply == reply


def test_a_group_message_without_msgid_is_refused_rather_than_filed_once_per_resend(robot):
    message = opened(robot, f"<xml><ChatId>{GROUP}</ChatId><ChatType>group</ChatType><MsgType>text</MsgType>"
                            "<Text><Content>路灯坏了</Content></Text></xml>")
    with pytest.raises(wecom.Undecryptable) as refused:
        wecom.decide(message)
    assert set(refused.value.fields) == {"MsgId"}


def test_a_message_without_a_name_files_without_a_reporter(robot):
    message = opened(robot, f"<xml><MsgId>m-10</MsgId><ChatId>{GROUP}</ChatId><ChatType>group</ChatType>"
                            "<From><UserId>u1</UserId></From><MsgType>text</MsgType><Text><Content>路灯坏了</Content></Text></xml>")
    assert "reporter" not in wecom.decide(message).fields


def test_a_decrypted_text_that_is_not_a_message_is_undecryptable(robot):
    for plaintext in ("not xml", "<xml><ChatId>x</ChatId></xml>"):
        with pytest.raises(wecom.Undecryptable):
            opened(robot, plaintext)


def test_the_filed_reply_names_the_tracking_number_and_its_page():
    reply = wecom.filed_reply("YT-20261129-7KQ4-M9XD", PUBLIC_URL + "/")
    assert "YT-20261129-7KQ4-M9XD" in reply
    assert f"{PUBLIC_URL}/track/YT-20261129-7KQ4-M9XD" in reply


# -- settings -------------------------------------------------------------------------------

def test_a_key_that_is_not_wecoms_43_characters_stops_the_service_at_start():
    with pytest.raises(ValueError, match="43"):
        wecom.WeComCallback("tok3n", "short", "", PUBLIC_URL, MAX_CLOCK_SKEW)


def test_logs_may_name_a_group_but_never_a_person_or_a_chat_alone(robot):
    in_group = opened(robot, group_event("add_to_chat", chat_id=GROUP, msg_id="m-11"))
    alone = opened(robot, group_text("路灯坏了", chat_id="wo-single", msg_id="m-12", user_id="zhangsan", chat_type="single"))
    assert wecom.loggable(in_group) == {"msg_type": "event", "chat_type": "group", "chat_id": GROUP}
    assert wecom.loggable(alone) == {"msg_type": "text", "chat_type": "single", "chat_id": None}
