"""WeCom's side of a group robot's callback, written from WeCom's documentation
(加解密方案说明, 群机器人回调说明) and independent of the library intake uses, so the
two meet only where WeCom's format says they must.

- key = base64(EncodingAESKey + "="), 32 bytes; IV = its first 16 bytes; AES-256-CBC;
- plaintext = 16 random bytes + the message's length (4 bytes, big-endian) + the
  message + the receive id (empty for a group robot), PKCS#7-padded to 32-byte blocks;
- Encrypt = base64(ciphertext); msg_signature = SHA-1 of the sorted concatenation of
  token, timestamp, nonce and Encrypt, in hex.
"""
import base64
import hashlib
import os
import secrets
import string
import struct
import time
from xml.etree import ElementTree

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK_BYTES = 32
RANDOM_BYTES = 16


def new_encoding_aes_key():
    """43 letters and digits, as WeCom's console generates one."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(43))


class WeComPeer:
    def __init__(self, token, encoding_aes_key, receive_id=""):
        self.token, self.encoding_aes_key = token, encoding_aes_key
        self.key = base64.b64decode(encoding_aes_key + "=")
        assert len(self.key) == 32
        self.receive_id = receive_id

    def _cipher(self):
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, message, receive_id=None):
        body = message.encode("utf-8")
        receive_id = self.receive_id if receive_id is None else receive_id
        plain = os.urandom(RANDOM_BYTES) + struct.pack(">I", len(body)) + body + receive_id.encode("utf-8")
        pad = BLOCK_BYTES - len(plain) % BLOCK_BYTES
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")

    def decrypt(self, encrypted):
        """``(message, receive id)`` of an Encrypt value."""
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()
        pad = plain[-1]
        assert 1 <= pad <= BLOCK_BYTES and plain[-pad:] == bytes([pad]) * pad, "bad PKCS#7 padding"
        plain = plain[RANDOM_BYTES:-pad]
        (length,) = struct.unpack(">I", plain[:4])
        return plain[4:4 + length].decode("utf-8"), plain[4 + length:].decode("utf-8")

    def signature(self, timestamp, nonce, encrypted):
        return hashlib.sha1("".join(sorted([self.token, timestamp, nonce, encrypted])).encode("utf-8")).hexdigest()

    @staticmethod
    def fresh():
        return str(int(time.time())), secrets.token_hex(5)

    def verification(self, echo):
        """The query of WeCom's GET that checks the callback URL: ``echo`` encrypted as ``echostr``."""
        timestamp, nonce = self.fresh()
        echostr = self.encrypt(echo)
        return {"msg_signature": self.signature(timestamp, nonce, echostr), "timestamp": timestamp, "nonce": nonce, "echostr": echostr}

    def callback(self, message_xml):
        """``(query, body)`` of WeCom's POST carrying ``message_xml``."""
        timestamp, nonce = self.fresh()
        encrypted = self.encrypt(message_xml)
        query = {"msg_signature": self.signature(timestamp, nonce, encrypted), "timestamp": timestamp, "nonce": nonce}
        return query, f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"

    def read_reply(self, body):
        """The plaintext of a passive reply, after checking its signature and receive id as WeCom would."""
        reply = ElementTree.fromstring(body)
        encrypted = reply.findtext("Encrypt")
        expected = self.signature(reply.findtext("TimeStamp"), reply.findtext("Nonce"), encrypted)
        assert reply.findtext("MsgSignature") == expected, "the reply's MsgSignature does not match"
        message, receive_id = self.decrypt(encrypted)
        assert receive_id == self.receive_id, f"the reply is for receive id {receive_id!r}"
        return message


def group_text(content, *, chat_id, msg_id, user_id="zhangsan", name="张三", chat_type="group", msg_type="text"):
    """A text message @-mentioning the robot, as WeCom's 群机器人回调 documents it."""
    return f"""<xml>
  <WebhookUrl><![CDATA[http://in.qyapi.weixin.qq.com/cgi-bin/webhook/send?key=WEBHOOK]]></WebhookUrl>
  <MsgId>{msg_id}</MsgId>
  <ChatId><![CDATA[{chat_id}]]></ChatId>
  <ChatType>{chat_type}</ChatType>
  <From>
    <UserId>{user_id}</UserId>
    <Name><![CDATA[{name}]]></Name>
    <Alias><![CDATA[alias]]></Alias>
  </From>
  <GetChatInfoUrl><![CDATA[https://qyapi.weixin.qq.com/cgi-bin/webhook/get_chat_info?code=CODE]]></GetChatInfoUrl>
  <MsgType>{msg_type}</MsgType>
  <Text>
    <Content><![CDATA[{content}]]></Content>
  </Text>
</xml>"""


def group_event(event_type, *, chat_id, msg_id):
    """The robot added to a chat or removed from one."""
    return f"""<xml>
  <WebhookUrl><![CDATA[http://in.qyapi.weixin.qq.com/cgi-bin/webhook/send?key=WEBHOOK]]></WebhookUrl>
  <ChatId><![CDATA[{chat_id}]]></ChatId>
  <ChatType>group</ChatType>
  <From><UserId>zhangsan</UserId><Name><![CDATA[张三]]></Name><Alias><![CDATA[alias]]></Alias></From>
  <MsgType>event</MsgType>
  <Event><EventType><![CDATA[{event_type}]]></EventType></Event>
  <MsgId>{msg_id}</MsgId>
</xml>"""
