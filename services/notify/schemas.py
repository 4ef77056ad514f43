"""What comes into notify over HTTP and what goes out."""
import re

from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, pre_load, validate

from wangge.fields import page_number
from wangge.logs import mask_name, mask_phone, redact_phones

from services.notify.channels import CHANNEL_NAMES
from services.notify.delivery import FAILED, HELD, PENDING, SENDING, SENT


class NotificationQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    tracking_no = fields.String(validate=validate.Length(min=1, max=64))
    case_id = fields.String(validate=validate.Length(min=1, max=80))
    campaign_id = fields.String(validate=validate.Length(min=1, max=64))
    recipient = fields.String(validate=validate.Length(min=1, max=80), metadata={"description": "A recipient key: a person's id, or resident:<tracking_no>."})
    status = fields.String(validate=validate.OneOf((PENDING, HELD, SENDING, SENT, FAILED)))
    page = page_number()
    per_page = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class AlertSchema(Schema):
    class Meta:
        unknown = INCLUDE

    status = fields.String(required=True)
    labels = fields.Dict(required=True)
    annotations = fields.Dict(load_default=dict)
    startsAt = fields.String(required=True)
    fingerprint = fields.String(load_default="")


class AlertmanagerPayloadSchema(Schema):
    """Alertmanager's webhook body (version 4)."""

    class Meta:
        unknown = INCLUDE

    status = fields.String(required=True, validate=validate.OneOf(("firing", "resolved")))
    groupKey = fields.String(required=True)
    alerts = fields.List(fields.Nested(AlertSchema), required=True, validate=validate.Length(min=1))


class PreferencesSchema(Schema):
    """A recipient's channel. Which WeCom robot posts is notify's own setting (by the
    registry's WeChat groups), never a caller's."""

    class Meta:
        unknown = RAISE

    channel = fields.String(required=True, validate=validate.OneOf(CHANNEL_NAMES))

    @pre_load
    def no_robot_key(self, data, **kwargs):
        # earlier versions took one here: say why it is refused, not just that it is unknown
        if isinstance(data, dict) and "wecom_key" in data:
            raise ValidationError(["Not accepted: WeCom robots are configured in notify for each WeChat group of the registry."], "wecom_key")
        return data


class RecipientViewSchema(Schema):
    """Whom a notification is for, name and phone masked."""

    role = fields.String()
    key = fields.String()
    name = fields.Function(lambda recipient: mask_name(recipient.get("name")))
    phone = fields.Function(lambda recipient: mask_phone(recipient.get("phone")))


# A resident's one-time follow-up link: whoever reads it can answer for them.
FOLLOW_UP_LINK = re.compile(r"(/follow-up/)[A-Za-z0-9_-]+")


def message_for_operators(body):
    """A sent message as operators may read it: phone numbers masked, follow-up links cut."""
    return FOLLOW_UP_LINK.sub(r"\1…", redact_phones(body))


class MessageForOperators(fields.String):
    def _serialize(self, value, attr, obj, **kwargs):
        return super()._serialize(message_for_operators(value or ""), attr, obj, **kwargs)


class NotificationViewSchema(Schema):
    """One message to one recipient on one channel, with where its delivery stands."""

    class Meta:
        ordered = True

    id = fields.String(attribute="_id")
    kind = fields.String()
    event_type = fields.String()
    event_id = fields.String()
    case_id = fields.String(allow_none=True)
    tracking_no = fields.String(allow_none=True)
    recipient_role = fields.String(attribute="recipient.role")
    recipient = fields.Nested(RecipientViewSchema)
    channel = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    held_until = fields.AwareDateTime(allow_none=True)
    next_attempt_at = fields.AwareDateTime(allow_none=True, metadata={"description": "null once sent or failed."})
    sent_at = fields.AwareDateTime(allow_none=True)
    last_error = fields.String(allow_none=True)
    subject = fields.String()
    body = MessageForOperators()
    created_at = fields.AwareDateTime()


class NotificationPageSchema(Schema):
    """A page of notifications, newest first; ``total`` counts every match."""

    class Meta:
        ordered = True

    items = fields.List(fields.Nested(NotificationViewSchema), required=True)
    total = fields.Integer(required=True)


class AlertsAcceptedSchema(Schema):
    accepted = fields.Integer(required=True, metadata={"description": "How many alerts will reach the operators."})


class PreferencesViewSchema(Schema):
    """A recipient's preferences as stored (the WeCom key is never shown)."""

    class Meta:
        ordered = True

    recipient = fields.String(required=True, attribute="_id")
    channel = fields.String(required=True)
    updated_at = fields.AwareDateTime(required=True)
