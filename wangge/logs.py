"""Structured (JSON) logs that never carry a resident's phone number or full name."""
import logging
import re

# Mainland mobile numbers, with or without +86, and landlines such as 0591-24567890.
PHONE_PATTERN = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d)\d{4}(\d{4})(?!\d)|(?<!\d)(0\d{2,3}-?)\d{3,4}(\d{4})(?!\d)")


def mask_phone(phone):
    """``13812345678`` → ``138****5678``: enough for a worker to match a caller."""
    if not phone:
        return phone
    digits = str(phone)
    if len(digits) <= 4:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7 if len(digits) > 7 else 1) + digits[-4:]


def mask_name(name):
    """``张水如`` → ``张**``: the family name stays, the person does not."""
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1)


# A one-character name would mask that character everywhere in a text.
MIN_MASKED_NAME_CHARS = 2


def redact_people(text, names=()):
    """``text`` with every phone number and each of ``names`` masked (``鲍老伯`` → ``鲍**``)."""
    text = redact_phones(text)
    for name in names:
        if name and len(name) >= MIN_MASKED_NAME_CHARS:
            text = text.replace(name, mask_name(name))
    return text


def redact_phones(text):
    def replace(match):
        if match.group(1):
            return f"{match.group(1)}****{match.group(2)}"
        return f"{match.group(3)}****{match.group(4)}"

    return PHONE_PATTERN.sub(replace, text)


# What every LogRecord has; everything else on a record came from ``extra=``.
STANDARD_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def redact_value(value):
    """Phone numbers masked in a string, or in every string inside lists and dicts."""
    if isinstance(value, str):
        return redact_phones(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(item) for item in value)
    return value


class RedactPhones(logging.Filter):
    """A last line of defence over the whole record: code logs masked values, and a
    phone number that slips through — in the message, its arguments, an ``extra``
    field or the text of an exception — is masked here."""

    def filter(self, record):
        record.msg = redact_phones(str(record.msg))
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(redact_value(a) if isinstance(a, (str, dict, list, tuple)) else a for a in args)
        for name, value in list(vars(record).items()):
            if name not in STANDARD_RECORD_FIELDS:
                setattr(record, name, redact_value(value))
        if record.exc_info:
            # formatted now, so the traceback's text (exception messages) is masked too
            record.exc_text = redact_phones(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact_phones(record.exc_text)
        return True


# Open311 clients may send their api_key in a URL's query, which the HTTP server's
# access log line quotes; a broker or store URI may carry a password, and nameko masks
# it only in the first of several broker nodes' URIs: neither ever reaches a log.
# (``api%5Fkey``: intake refuses the name percent-encoded, after the line is logged)
API_KEY_PARAMETER = re.compile(r"(api(?:_|%5f)key=)[^&\s\"']+", re.IGNORECASE)
URI_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s;]*:)[^@\s;/]+@", re.IGNORECASE)


def redact_secrets(text):
    return URI_PASSWORD.sub(r"\1***@", API_KEY_PARAMETER.sub(r"\1***", text))


class RedactSecrets(logging.Filter):
    def filter(self, record):
        record.msg = redact_secrets(str(record.msg))
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(redact_secrets(arg) if isinstance(arg, str) else arg for arg in args)
        if record.exc_text:  # formatted by RedactPhones, which runs first
            record.exc_text = redact_secrets(record.exc_text)
        return True


class DropFailuresLoggedElsewhere(logging.Filter):
    """nameko logs every failed worker with its traceback; entrypoints that say
    ``logs_own_failures`` (the retry and dead-letter mechanism) log one line of
    their own with the reason, so theirs is dropped rather than said twice."""

    def filter(self, record):
        if record.name != "nameko.containers" or not record.args:
            return True
        worker_ctx = record.args[0] if isinstance(record.args, tuple) else None
        return not getattr(getattr(worker_ctx, "entrypoint", None), "logs_own_failures", False)


def logging_config(level="INFO"):
    """A ``logging.config.dictConfig`` dictionary: one JSON object per line on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "redact_phones": {"()": "wangge.logs.RedactPhones"},
            "redact_secrets": {"()": "wangge.logs.RedactSecrets"},
            "drop_failures_logged_elsewhere": {"()": "wangge.logs.DropFailuresLoggedElsewhere"},
        },
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
                "json_ensure_ascii": False,
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["drop_failures_logged_elsewhere", "redact_phones", "redact_secrets"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        # nameko logs every expected error (a 400, a dead-lettered message) with a
        # traceback; the entrypoint metrics and our own log lines already say it.
        "loggers": {"nameko.containers": {"level": "ERROR"}},
    }



def short_error(exc, limit=500):
    """``Type: message`` for a log line or a dead letter's reason: one line, bounded,
    without the topology description pymongo appends to connection errors."""
    text = " ".join(str(exc).split())
    text = text.split(", Timeout: ")[0].split(", Topology Description: ")[0]
    if len(text) > limit:
        text = text[:limit] + "…"
    return f"{type(exc).__name__}: {text}"
