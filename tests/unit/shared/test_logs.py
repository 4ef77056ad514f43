import logging

import pytest

from wangge.logs import RedactPhones, mask_name, mask_phone, redact_phones


@pytest.mark.parametrize(
    "phone, masked",
    [("13812345678", "138****5678"), ("0591-24567890", "059******7890"), ("", "")],
)
def test_mask_phone_keeps_only_the_ends(phone, masked):
    assert mask_phone(phone) == masked


def test_mask_name_keeps_the_family_name():
    assert mask_name("张水如") == "张**"
    assert mask_name("鲍") == "鲍"


@pytest.mark.parametrize(
    "text",
    ["来电13812345678", "phone=+86 13912345678;", "座机0591-24567890", "号码 8613712345678 结束"],
)
def test_phone_numbers_never_reach_a_log_line_in_full(text):
    redacted = redact_phones(text)
    digits = "".join(ch for ch in redacted if ch.isdigit())
    assert "****" in redacted
    assert "12345678" not in digits and "24567890" not in digits


def test_filter_masks_message_and_arguments():
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "call from %s", ("13812345678",), None)
    RedactPhones().filter(record)
    assert record.getMessage() == "call from 138****5678"


def test_numbers_that_are_not_phones_are_left_alone():
    assert redact_phones("YT-20261128-000123 and 112 items") == "YT-20261128-000123 and 112 items"


def test_short_error_keeps_one_bounded_line_without_the_store_topology():
    from pymongo.errors import ServerSelectionTimeoutError

    from wangge.logs import short_error

    exc = ServerSelectionTimeoutError(
        "127.0.0.1:27017: [Errno 111] Connection refused (configured timeouts: socketTimeoutMS: 20000.0ms),\n"
        " Timeout: 5.0s, Topology Description: <TopologyDescription id: 1, topology_type: Unknown, servers: [...]>"
    )
    assert short_error(exc) == (
        "ServerSelectionTimeoutError: 127.0.0.1:27017: [Errno 111] Connection refused "
        "(configured timeouts: socketTimeoutMS: 20000.0ms)"
    )
    assert len(short_error(ValueError("x" * 10_000))) < 600


def test_the_whole_structured_record_is_masked_extra_fields_and_exception_text_included(tmp_path):
    import io
    import logging.config

    from wangge.logs import logging_config

    stream = io.StringIO()
    config = logging_config("INFO")
    config["handlers"]["stderr"]["stream"] = stream
    logging.config.dictConfig(config)
    try:
        try:
            raise ValueError("gateway refused 13812345678")
        except ValueError:
            logging.getLogger("wangge.test").exception(
                "send failed", extra={"recipient": "13912345678", "detail": {"to": ["13712345678"]}})
    finally:
        logging.config.dictConfig(logging_config("INFO"))
    line = stream.getvalue()
    assert "send failed" in line and "ValueError" in line
    for phone in ("13812345678", "13912345678", "13712345678"):
        assert phone not in line
    assert "138****5678" in line and "139****5678" in line and "137****5678" in line


def test_an_api_key_in_a_logged_url_is_masked():
    from wangge.logs import RedactSecrets
    record = logging.LogRecord("nameko.web.server", logging.INFO, "", 0,
                               '127.0.0.1 - - "GET /open311/v2/requests.json?status=open&api_key=wg311_s3cr3t-_x&x=1 HTTP/1.1" 200', (), None)
    RedactSecrets().filter(record)
    assert record.getMessage() == '127.0.0.1 - - "GET /open311/v2/requests.json?status=open&api_key=***&x=1 HTTP/1.1" 200'
    formatted = logging.LogRecord("x", logging.INFO, "", 0, "asked %s", ("API_KEY=abc",), None)
    RedactSecrets().filter(formatted)
    assert formatted.getMessage() == "asked API_KEY=***"
    every = logging.LogRecord("x", logging.INFO, "", 0, "GET /r.json?api_key=a1&api%5Fkey=b2&API%5fKEY=c3 HTTP/1.1", (), None)
    RedactSecrets().filter(every)
    assert every.getMessage() == "GET /r.json?api_key=***&api%5Fkey=***&API%5fKEY=*** HTTP/1.1"


def test_passwords_in_every_broker_nodes_uri_are_masked_in_the_whole_record():
    import io
    import logging.config

    from wangge.logs import logging_config

    # nameko masks only the first of several nodes' URIs in its reconnection warning
    stream = io.StringIO()
    config = logging_config("INFO")
    config["handlers"]["stderr"]["stream"] = stream
    logging.config.dictConfig(config)
    try:
        log = logging.getLogger("nameko.messaging")
        log.warning("Error connecting to broker at amqp://intake:********@rabbit-0:5672/;"
                    "amqp://intake:n0de-Secret@rabbit-1:5672/;amqps://intake:n0de-Secret@rabbit-2:5671/ (refused)")
        try:
            raise ConnectionError("cannot reach mongodb://routing:st0re-Secret@mongo-0:27017/?replicaSet=rs0")
        except ConnectionError:
            log.exception("store unreachable")
    finally:
        logging.config.dictConfig(logging_config("INFO"))
    lines = stream.getvalue()
    assert "n0de-Secret" not in lines and "st0re-Secret" not in lines
    assert "amqp://intake:***@rabbit-1:5672/" in lines and "amqps://intake:***@rabbit-2:5671/" in lines
    assert "mongodb://routing:***@mongo-0:27017/" in lines
