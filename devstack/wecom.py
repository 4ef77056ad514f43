"""The demo county's WeCom group robot, so the grid group's way in works on this machine.

``make run`` and ``make up`` give intake a callback token and EncodingAESKey of this
machine's own (made once, kept in ``var/devstack/wecom.json``, readable by its owner
only, never in the repository), unless ``WECOM_CALLBACK_TOKEN`` and
``WECOM_ENCODING_AES_KEY`` name a real robot's. ``python -m devstack wecom "…"`` then
plays WeCom: it posts a resident's @-mention in a grid group to ``/wecom/callback``,
encrypted and signed as WeCom does it (with wechatpy, the library intake opens it with),
and prints the robot's answer, the tracking number in it.
"""
import argparse
import json
import os
import secrets
import string
import time
import uuid

import requests
import xmltodict
from wechatpy.enterprise.crypto import WeChatCrypto

from devstack.processes import ROOT, SERVICE_PORTS, http_ok
from devstack.web import WEB_PORT

SETTINGS_PATH = ROOT / "var" / "devstack" / "wecom.json"
# 南门社区第二网格's residents' group in the demo county (its registry's wechat_groups)
DEMO_GROUP = "wx-zc-nanmen-02"
ALPHANUMERIC = string.ascii_letters + string.digits


def robot_settings():
    """``{WECOM_CALLBACK_TOKEN, WECOM_ENCODING_AES_KEY}`` for intake: the environment's when
    it names a robot, else this machine's demo robot's (made on first use)."""
    if os.environ.get("WECOM_CALLBACK_TOKEN") or os.environ.get("WECOM_ENCODING_AES_KEY"):
        return {}
    if not SETTINGS_PATH.exists():
        SETTINGS_PATH.parent.mkdir(parents=True, exist_ok=True)
        # as WeCom's console makes them: a token of up to 32 letters and digits, a key of 43
        made = {"WECOM_CALLBACK_TOKEN": "".join(secrets.choice(ALPHANUMERIC) for _ in range(32)),
                "WECOM_ENCODING_AES_KEY": "".join(secrets.choice(ALPHANUMERIC) for _ in range(43))}
        descriptor = os.open(SETTINGS_PATH, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as settings:
            json.dump(made, settings)
    return json.loads(SETTINGS_PATH.read_text(encoding="utf-8"))


def group_message(text, group, sender_id, sender_name, message_id):
    """A text @-mentioning the robot in a group chat, as WeCom's 群机器人回调 sends it."""
    return xmltodict.unparse({"xml": {
        "MsgId": message_id, "ChatId": group, "ChatType": "group",
        "From": {"UserId": sender_id, "Name": sender_name, "Alias": sender_id},
        "MsgType": "text", "Text": {"Content": f"@网格助手 {text}"},
    }}, full_document=False)


def callback_url():
    """The gateway's path when the web app's server runs, else intake's own."""
    for base, probe in ((f"http://127.0.0.1:{WEB_PORT}", "/app-config.json"), (f"http://127.0.0.1:{SERVICE_PORTS['intake']}", "/health")):
        if http_ok(base + probe):
            return f"{base}/wecom/callback"
    raise SystemExit("wangge: neither the web app's server nor intake answers; start the platform with make run or make up")


def seal(message_xml, token, encoding_aes_key, receive_id=""):
    """``(query, body)`` of WeCom's POST carrying ``message_xml``: encrypted and signed."""
    sealed = xmltodict.parse(WeChatCrypto(token, encoding_aes_key, receive_id).encrypt_message(
        message_xml, secrets.token_hex(5), str(int(time.time()))))["xml"]
    query = {"msg_signature": sealed["MsgSignature"], "timestamp": sealed["TimeStamp"], "nonce": sealed["Nonce"]}
    return query, xmltodict.unparse({"xml": {"Encrypt": sealed["Encrypt"]}}, full_document=False)


def send(text, url, token, encoding_aes_key, receive_id="", group=DEMO_GROUP, sender=("lin-xiansheng", "林先生"), message_id=None):
    """Post the message to the callback ``url`` as WeCom would; the robot's answer in plain text."""
    message_id = message_id or str(uuid.uuid4().int % 10**19)
    query, body = seal(group_message(text, group, *sender, message_id), token, encoding_aes_key, receive_id)
    answer = requests.post(url, params=query, data=body.encode("utf-8"), headers={"Content-Type": "text/xml"}, timeout=30)
    if answer.status_code != 200:
        raise SystemExit(f"wangge: /wecom/callback answered {answer.status_code}: {answer.text}")
    reply = xmltodict.parse(answer.text)["xml"]
    opened = WeChatCrypto(token, encoding_aes_key, receive_id).decrypt_message(answer.text, reply["MsgSignature"], reply["TimeStamp"],
                                                                                reply["Nonce"])
    return xmltodict.parse(opened)["xml"]["Text"]["Content"]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m devstack wecom",
                                     description="A resident's message to the grid group's robot, sent as WeCom sends it.")
    parser.add_argument("text", help="what the resident writes after @-mentioning the robot")
    parser.add_argument("--group", default=DEMO_GROUP, help=f"the group's chat id (default {DEMO_GROUP}, 南门社区第二网格)")
    parser.add_argument("--message-id", help="WeCom's MsgId; the same one again is a resend and files nothing new")
    arguments = parser.parse_args(argv)
    if not (SETTINGS_PATH.exists() or os.environ.get("WECOM_CALLBACK_TOKEN")):
        raise SystemExit("wangge: this machine has no demo WeCom robot yet: start the platform (make run or make up) first")
    settings = robot_settings() or {key: os.environ.get(key, "") for key in ("WECOM_CALLBACK_TOKEN", "WECOM_ENCODING_AES_KEY")}
    print(send(arguments.text, callback_url(), settings["WECOM_CALLBACK_TOKEN"], settings["WECOM_ENCODING_AES_KEY"],
               os.environ.get("WECOM_RECEIVE_ID", ""), arguments.group, message_id=arguments.message_id))
    return 0
