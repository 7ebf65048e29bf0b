"""Structured JSON logs: one object per line, with the request id when there is one."""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from app.core.context import current_request_id

# Attributes every LogRecord has; anything else passed through `extra=` is emitted.
# `request_id` is stamped on every record by the record factory below, so never
# pass it in `extra=` (logging refuses to overwrite an existing attribute).
# `color_message` is uvicorn's ANSI-coloured copy of its message, for terminals only.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if entry.get("request_id") is None:
            entry.pop("request_id", None)
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class _JsonHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed, so reconfiguring replaces only it."""


def _stamp_request_id(factory: Any) -> Any:
    # Stamped when the record is created, i.e. in the request's own context: a handler
    # that formats later (another thread, a test's log capture) still sees the id.
    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = factory(*args, **kwargs)
        record.request_id = current_request_id()
        return record

    make_record.stamps_request_id = True  # type: ignore[attr-defined]
    return make_record


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    # Handlers installed by others (pytest's capture, an embedding server) stay.
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _JsonHandler)]
    handler = _JsonHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "stamps_request_id", False):
        logging.setLogRecordFactory(_stamp_request_id(factory))
    # uvicorn's access log prints query strings (tokens could be there): ours replaces it.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
