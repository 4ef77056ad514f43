"""WeCom (企业微信): the grid group's robot as a way in.

A resident @-mentions the grid's robot in the group's chat; WeCom posts the message
to ``/wecom/callback`` as its 群机器人回调 documents it: signed (``msg_signature``, SHA-1
over the robot's token, the timestamp, the nonce and the ciphertext) and encrypted
(AES-256-CBC under the EncodingAESKey). This module checks the signature in constant
time and that the timestamp is recent (a captured callback cannot be replayed later),
then wechatpy opens the message; this module reads what WeCom sends (``ChatId``, ``ChatType``, ``From``,
``MsgType``, ``Text`` or ``MixedMessage``, ``MsgId``), decides whether it is a
resident's request, and words the passive reply the robot posts to the group, which
WeCom takes encrypted in the HTTP answer itself: no further secret, and at once.

WeCom resends a message it got no answer to within 5 seconds, up to three times, with
the same ``MsgId``: it is the idempotency key, so a resend files nothing new and is
answered with the same tracking number.
"""
import hashlib
import hmac
import re
from dataclasses import dataclass, field

import xmltodict
from marshmallow import ValidationError
from nameko.extensions import DependencyProvider
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

from wangge.errors import ApiError, NotFound

from services.intake.schemas import RequestFieldsSchema

CHANNEL = "wechat_group"
GROUP_CHAT = "group"
TEXT, MIXED, IMAGE = "text", "mixed", "image"
# What WeCom tells the robot about itself (added to or removed from a chat, a button
# pressed, a command on the 小黑板): nothing a resident asked, so no reply either.
SILENT_TYPES = frozenset({"event", "attachment", "command"})
ENCODING_AES_KEY_CHARS = 43  # base64 of a 32-byte AES key without its "="
MAX_MEDIA = 20
MAX_NAME_CHARS = 50
# The robot's own @-mention opens the text ("@网格助手 路灯坏了"); WeCom puts a space
# (often U+2005) after each mention. Only mentions at the start are the address line.
LEADING_MENTIONS = re.compile(r"^(?:\s*@\S+(?:\s+|$))+")

# What the robot answers, in the group's language.
FILED_REPLY = "已受理您的诉求，受理编号：{tracking_no}。\n查询办理进度：{link}"
ONLY_IN_GROUPS = "请在您所在网格的居民群里@我说明诉求，我会登记并回复受理编号。"
ONLY_TEXT = "目前只能登记文字诉求，请@我后用文字说明您遇到的问题。"
EMPTY_TEXT = "请在@我之后写下您的诉求，例如：南湖花园二区路灯不亮。"
NOT_FILEABLE = "这条消息无法登记为诉求（内容过长或格式有误），请精简后重新@我。"


class NotConfigured(NotFound):
    error_code = "wecom_not_configured"


class BadSignature(ApiError):
    http_status = 403
    error_code = "bad_signature"


class StaleTimestamp(ApiError):
    http_status = 403
    error_code = "stale_timestamp"


class Undecryptable(ApiError):
    error_code = "undecryptable"


def configured(callback):
    """The robot's :class:`WeComCallback`, or :class:`NotConfigured` while it has none."""
    if callback is None:
        raise NotConfigured("The WeCom callback is not configured here (WECOM_CALLBACK_TOKEN, WECOM_ENCODING_AES_KEY).")
    return callback


@dataclass(frozen=True)
class GroupMessage:
    """One callback as WeCom documents it; ``sender_id`` and ``sender_name`` are personal data."""

    msg_type: str
    chat_type: str | None = None
    chat_id: str | None = None
    msg_id: str | None = None
    sender_id: str | None = None
    sender_name: str | None = None
    text: str = ""
    media: list = field(default_factory=list)


@dataclass(frozen=True)
class Decision:
    """A request to file (``fields``), or only a ``reply`` to the group (``None``: none at all)."""

    fields: dict | None = None
    reply: str | None = None


def _text_of(node):
    """An element's text, whether xmltodict gave it as a string or (with attributes) as a dict."""
    if isinstance(node, dict):
        node = node.get("#text")
    return node.strip() if isinstance(node, str) else None


def _child(node, name):
    """The element ``name`` of ``node`` when it has elements of its own, else ``{}``."""
    found = node.get(name) if isinstance(node, dict) else None
    return found if isinstance(found, dict) else {}


def _parts(root, msg_type):
    """The texts and the picture links of a text or mixed (图文混排) message."""
    if msg_type == TEXT:
        return [_text_of(_child(root, "Text").get("Content")) or ""], []
    texts, media = [], []
    if msg_type == MIXED:
        for item in _child(root, "MixedMessage").get("MsgItem") or []:
            kind = _text_of(item.get("MsgType")) if isinstance(item, dict) else None
            if kind == TEXT:
                texts.append(_text_of(_child(item, "Text").get("Content")) or "")
            elif kind == IMAGE and _text_of(_child(item, "Image").get("ImageUrl")):
                media.append(_text_of(_child(item, "Image").get("ImageUrl")))
    return texts, media


def read_message(plaintext):
    """The decrypted XML as a :class:`GroupMessage`, or :class:`Undecryptable` naming what is missing."""
    try:
        document = xmltodict.parse(plaintext, force_list=("MsgItem",))
    except Exception as exc:  # expat's errors, and whatever else a text that is not XML raises
        raise Undecryptable("The decrypted message is not XML.", {"Encrypt": ["Decrypts to something that is not XML."]}) from exc
    root = _child(document, "xml")
    msg_type = _text_of(root.get("MsgType"))
    if not msg_type:
        raise Undecryptable("The decrypted message names no MsgType.", {"MsgType": ["Missing."]})
    texts, media = _parts(root, msg_type)
    sender = _child(root, "From")
    return GroupMessage(
        msg_type=msg_type,
        chat_type=_text_of(root.get("ChatType")),
        chat_id=_text_of(root.get("ChatId")),
        msg_id=_text_of(root.get("MsgId")),
        sender_id=_text_of(sender.get("UserId")),
        sender_name=_text_of(sender.get("Name")),
        text="\n".join(LEADING_MENTIONS.sub("", text, count=1).strip() for text in texts if text).strip(),
        media=media,
    )


def decide(message):
    """What to do with a message: file it as a request of the group's grid (routing
    locates the grid by the group), or only answer, or neither."""
    if message.msg_type in SILENT_TYPES:
        return Decision()
    if message.chat_type != GROUP_CHAT:
        return Decision(reply=ONLY_IN_GROUPS)  # a chat alone with the robot names no grid
    if message.msg_type not in (TEXT, MIXED):
        return Decision(reply=ONLY_TEXT)
    if not message.text:
        return Decision(reply=EMPTY_TEXT)
    if not message.msg_id:
        # the idempotency key: without it every resend would file again
        raise Undecryptable("The message has no MsgId.", {"MsgId": ["Missing: it tells WeCom's resends apart."]})
    fields = {"text": message.text, "wechat_group_id": message.chat_id, "external_ref": message.msg_id}
    if message.media:
        fields["media"] = message.media[:MAX_MEDIA]
    if message.sender_name:
        # the name WeCom shows for the sender: the grid's people know them by it. Their
        # WeCom user id is not kept; the reply @-mentions them with it, and that is all.
        fields["reporter"] = {"name": message.sender_name[:MAX_NAME_CHARS]}
    try:
        return Decision(fields=RequestFieldsSchema().load(fields))
    except ValidationError:
        return Decision(reply=NOT_FILEABLE)


def loggable(message):
    """What a log line may say of a message: its kind, and a group's id (how operators
    learn which id the registry needs); never the sender, the text, or a chat alone."""
    return {"msg_type": message.msg_type, "chat_type": message.chat_type,
            "chat_id": message.chat_id if message.chat_type == GROUP_CHAT else None}


def idempotency_key(message):
    return f"wecom:{message.msg_id}"


def filed_reply(tracking_no, public_url):
    return FILED_REPLY.format(tracking_no=tracking_no, link=f"{public_url.rstrip('/')}/track/{tracking_no}")


def reply_xml(text, mention=None):
    """The robot's passive text reply as WeCom documents it, @-mentioning the sender."""
    reply_text = {"Content": text}
    if mention:
        reply_text["MentionedList"] = {"Item": [mention]}
    return xmltodict.unparse({"xml": {"MsgType": TEXT, "Text": reply_text}}, full_document=False)


class WeComCallback:
    """The robot's callback secrets, as wechatpy's ``WeChatCrypto`` uses them."""

    def __init__(self, token, encoding_aes_key, receive_id, public_url, max_clock_skew):
        if len(encoding_aes_key) != ENCODING_AES_KEY_CHARS:
            raise ValueError(f"WECOM_ENCODING_AES_KEY must be the {ENCODING_AES_KEY_CHARS} characters WeCom shows")
        self.crypto = WeChatCrypto(token, encoding_aes_key, receive_id)
        self.public_url = public_url
        self.max_clock_skew = max_clock_skew

    def verify_url(self, query, now):
        """The plaintext of ``echostr``: WeCom's check of the URL before it saves it
        (``now``: seconds since the epoch)."""
        return self._open("echostr", query, query["echostr"], now)

    def open_message(self, query, body, now):
        """The decrypted message XML of a callback's body ``<xml><Encrypt>…</Encrypt></xml>``."""
        try:
            envelope = xmltodict.parse(body)["xml"]
            encrypted = envelope["Encrypt"]
        except Exception as exc:
            raise Undecryptable("The body is not WeCom's <xml><Encrypt>…</Encrypt></xml>.",
                                {"body": ["Must be XML with an Encrypt element."]}) from exc
        if not isinstance(encrypted, str) or not encrypted.strip():
            raise Undecryptable("The Encrypt element is empty.", {"Encrypt": ["Must hold the ciphertext."]})
        return self._open("Encrypt", query, encrypted.strip(), now)

    def seal(self, plaintext, nonce):
        """``plaintext`` encrypted and signed, as WeCom takes a passive reply."""
        return self.crypto.encrypt_message(plaintext, nonce)

    def _open(self, field_name, query, ciphertext, now):
        if abs(int(query["timestamp"]) - now) > self.max_clock_skew:
            raise StaleTimestamp("timestamp is too far from now.",
                                 {"timestamp": [f"Must be within {self.max_clock_skew} seconds of now."]})
        # wechatpy compares signatures with !=, which tells how much of a guess was right
        expected = hashlib.sha1("".join(sorted([self.crypto.token, query["timestamp"], query["nonce"], ciphertext])).encode("utf-8"))
        if not hmac.compare_digest(expected.hexdigest().encode("ascii"), query["msg_signature"].encode("utf-8")):
            raise BadSignature("msg_signature does not match.", {"msg_signature": ["Does not match the token and the message."]})
        try:
            return PrpCrypto(self.crypto.key).decrypt(ciphertext, self.crypto.corp_id)
        # a ciphertext that is not base64, not whole blocks, badly padded, not UTF-8 or
        # for another receive id: wechatpy raises whatever its steps raise (binascii,
        # struct, cryptography's and its own errors), none of them a fault of ours
        except Exception as exc:
            raise Undecryptable(f"{field_name} cannot be decrypted with this EncodingAESKey and receive id.",
                                {field_name: ["Cannot be decrypted."]}) from exc


class WeComSettings(DependencyProvider):
    """The robot's callback settings from ``WECOM`` in the config: a :class:`WeComCallback`,
    or ``None`` while the token and the key are unset (the endpoint then answers 404)."""

    def setup(self):
        settings = self.container.config.get("WECOM") or {}
        token, key = settings.get("TOKEN") or "", settings.get("ENCODING_AES_KEY") or ""
        if bool(token) != bool(key):
            raise ValueError("set both WECOM_CALLBACK_TOKEN and WECOM_ENCODING_AES_KEY, or neither")
        self.callback = WeComCallback(token, key, settings.get("RECEIVE_ID") or "", settings["PUBLIC_URL"],
                                      int(settings["MAX_CLOCK_SKEW"])) if token else None

    def get_dependency(self, worker_ctx):
        return self.callback
