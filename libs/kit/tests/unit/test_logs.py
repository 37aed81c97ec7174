import json
import logging

from funmagic_kit.logs import JsonFormatter, bind_correlation_id, current_correlation_id


def _format(record_message: str, **extra: object) -> dict:
    record = logging.makeLogRecord({"msg": record_message, "levelname": "INFO", "name": "t", **extra})
    return json.loads(JsonFormatter("credits").format(record))


def test_a_log_line_is_one_json_object_with_the_service_name() -> None:
    line = _format("reserved", amount=5)

    assert line["message"] == "reserved"
    assert line["service"] == "credits"
    assert line["level"] == "info"
    assert line["amount"] == 5


def test_the_bound_correlation_id_is_on_every_line_and_unbound_after() -> None:
    with bind_correlation_id("corr-123"):
        inside = _format("inside")
    outside = _format("outside")

    assert inside["correlation_id"] == "corr-123"
    assert "correlation_id" not in outside
    assert current_correlation_id() is None
