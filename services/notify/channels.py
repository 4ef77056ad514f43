"""Delivery channels, one small class each behind one interface:
``send(notification)`` returns normally once the peer accepted the message and
raises ``DeliveryFailed`` otherwise (``retriable`` says whether trying again can help).

Every message carries the notification's id, the same on every attempt, where
the peer can take it: as ``Idempotency-Key`` (SMS gateway, webhook) and in the
Message-ID (e-mail). A gateway that deduplicates on it delivers a message once
even when a send is repeated because its outcome was never recorded. The WeCom
robot has no such field: a repeat there reaches the group again.
"""
import hashlib
import hmac
import json
import smtplib
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote, quote_plus

import requests
import yaml

from wangge.logs import mask_name

WECOM = "wecom"
SMS = "sms"
EMAIL = "email"
WEBHOOK = "webhook"
OUTBOX = "outbox"
CHANNEL_NAMES = (WECOM, SMS, EMAIL, WEBHOOK, OUTBOX)

SIGNATURE_HEADER = "X-Wangge-Signature"
MESSAGE_ID_HEADER = "Idempotency-Key"


class DeliveryFailed(Exception):
    def __init__(self, message, retriable=True):
        super().__init__(message)
        self.retriable = retriable


def check_http(response):
    """2xx passes; 429 and 5xx may pass later; any other answer will not."""
    if response.status_code < 300:
        return
    retriable = response.status_code == 429 or response.status_code >= 500
    raise DeliveryFailed(f"HTTP {response.status_code}: {response.text[:200]}", retriable=retriable)


def post_json(url, payload, timeout, headers=None, data=None, params=None):
    try:
        response = requests.post(url, json=None if data else payload, data=data, headers=headers, params=params, timeout=timeout)
    except requests.RequestException as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
    check_http(response)
    return response


def signature(secret, body):
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def without_secret(text, secret):
    """``text`` with ``secret`` blotted out, as written and as a URL carries it: an
    exception of ``requests`` names the URL it was sending to, query included."""
    for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
        text = text.replace(form, "***")
    return text


def robot_keys(path):
    """{WeChat group id: its robot's key} from a YAML (or JSON) file, or {} without one."""
    if not path:
        return {}
    with open(path, encoding="utf-8") as keys_file:
        keys = yaml.safe_load(keys_file) or {}
    if not isinstance(keys, dict) or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in keys.items()):
        raise ValueError(f"{path}: expected a mapping of WeChat group ids to robot keys")
    return keys


class WeComRobot:
    """A WeCom group robot (企业微信群机器人): text message, the worker @-mentioned by phone.

    Which robot posts is notify's own setting, never a caller's: a grid's WeChat
    group (the registry's ``wechat_groups``, named in the event) posts through the
    robot ``ROBOT_KEYS_FILE`` gives it, every other message through ``DEFAULT_KEY``.
    A robot key lets whoever holds it post to the group, so it travels only as the
    ``key`` query parameter and never reaches an error, a log or the store."""

    name = WECOM

    def __init__(self, settings, timeout):
        self.url = settings["URL"]
        self.default_key = settings.get("DEFAULT_KEY")
        self.group_keys = robot_keys(settings.get("ROBOT_KEYS_FILE"))
        self.timeout = timeout

    def key_for(self, recipient):
        return self.group_keys.get(recipient.get("group")) or self.default_key

    def send(self, notification):
        key = self.key_for(notification["recipient"])
        if not key:
            raise DeliveryFailed("no WeCom robot for this group (WECOM_ROBOT_KEYS_FILE) and no WECOM_DEFAULT_KEY", retriable=False)
        try:
            self.post(key, notification)
        except DeliveryFailed as exc:
            # from None: the exception it came from names the URL, key and all
            raise DeliveryFailed(without_secret(str(exc), key), exc.retriable) from None

    def post(self, key, notification):
        text = {"content": notification["body"]}
        phone = notification["recipient"].get("phone")
        if phone and notification["recipient"]["role"] != "grid_group":
            text["mentioned_mobile_list"] = [phone]
        response = post_json(self.url, {"msgtype": "text", "text": text}, self.timeout, params={"key": key})
        # WeCom answers 200 with an error code in the body when it refuses; a body that
        # is not JSON (a proxy's error page) does not say the message went out
        try:
            answer = response.json() if response.content else {}
        except ValueError:
            raise DeliveryFailed(
                f"WeCom answered {response.status_code} with a body that is not JSON: {response.text[:200]}") from None
        if answer.get("errcode", 0) != 0:
            raise DeliveryFailed(f"WeCom errcode {answer.get('errcode')}: {answer.get('errmsg')}", retriable=answer.get("errcode") == 45009)


class SmsGateway:
    """An HTTP SMS gateway: ``POST {"phone", "content"}`` with a bearer token."""

    name = SMS

    def __init__(self, settings, timeout):
        self.url = settings["URL"]
        self.token = settings.get("TOKEN")
        self.signature = settings.get("SIGNATURE") or ""
        self.timeout = timeout

    def send(self, notification):
        phone = notification["recipient"].get("phone")
        if not phone:
            raise DeliveryFailed("the recipient has no phone number", retriable=False)
        headers = {MESSAGE_ID_HEADER: notification["_id"]}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        content = f"【{self.signature}】{notification['body']}" if self.signature else notification["body"]
        post_json(self.url, {"phone": phone, "content": content, "id": notification["_id"]}, self.timeout, headers=headers)


class Email:
    name = EMAIL

    def __init__(self, settings, timeout):
        self.settings = settings
        self.timeout = timeout

    def send(self, notification):
        address = notification["recipient"].get("email")
        if not address:
            raise DeliveryFailed("the recipient has no e-mail address", retriable=False)
        message = EmailMessage()
        message["From"] = self.settings["FROM"]
        message["To"] = address
        message["Subject"] = notification["subject"]
        message["Message-ID"] = f"<{hashlib.sha1(notification['_id'].encode()).hexdigest()}@wangge>"
        message.set_content(notification["body"])
        try:
            with smtplib.SMTP(self.settings["HOST"], int(self.settings["PORT"]), timeout=self.timeout) as smtp:
                if self.settings.get("STARTTLS"):
                    smtp.starttls()
                if self.settings.get("USERNAME"):
                    smtp.login(self.settings["USERNAME"], self.settings["PASSWORD"])
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(f"recipient refused: {exc}", retriable=False) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc


class SignedWebhook:
    """Any HTTP endpoint; the body is signed with HMAC-SHA256 over its exact bytes
    (``X-Wangge-Signature: sha256=<hex>``) so the receiver can trust it."""

    name = WEBHOOK

    def __init__(self, settings, timeout):
        self.url = settings["URL"]
        self.secret = settings.get("SECRET") or ""
        self.timeout = timeout

    def payload(self, notification):
        return {
            "id": notification["_id"], "kind": notification["kind"], "event_id": notification["event_id"],
            "case_id": notification.get("case_id"), "tracking_no": notification.get("tracking_no"),
            "recipient": notification["recipient"], "subject": notification["subject"], "body": notification["body"],
        }

    def send(self, notification):
        body = json.dumps(self.payload(notification), ensure_ascii=False, sort_keys=True).encode("utf-8")
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(self.secret, body),
                   MESSAGE_ID_HEADER: notification["_id"]}
        post_json(self.url, None, self.timeout, headers=headers, data=body)


def recipient_label(recipient):
    """A group by its name; a person by a masked one."""
    name = recipient.get("name")
    return name if recipient["role"] == "grid_group" else mask_name(name)


class Outbox:
    """Appends every message to one JSON-lines file: what `make run` uses, so a
    newcomer can read every notice the platform would have sent."""

    name = OUTBOX

    def __init__(self, settings, timeout=None):
        self.path = Path(settings["PATH"])

    def send(self, notification):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = {"id": notification["_id"], "kind": notification["kind"], "role": notification["recipient"]["role"],
                "recipient": recipient_label(notification["recipient"]), "subject": notification["subject"], "body": notification["body"]}
        with open(self.path, "a", encoding="utf-8") as outbox:
            outbox.write(json.dumps(line, ensure_ascii=False) + "\n")


CHANNEL_CLASSES = {cls.name: cls for cls in (WeComRobot, SmsGateway, Email, SignedWebhook, Outbox)}


def build_channels(config):
    settings = config["CHANNELS"]
    timeout = float(settings.get("TIMEOUT_SECONDS", 10))
    return {name: cls(settings[name], timeout) for name, cls in CHANNEL_CLASSES.items()}
