"""SMS backends behind one small interface, chosen by settings.SMS_BACKEND. A real provider is one
more subclass whose `send` passes `message.idempotency_key` to the provider's API."""

import fcntl
import logging
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmsMessage:
    to: str
    body: str
    idempotency_key: str


class BaseSmsBackend:
    def send(self, message: SmsMessage) -> None:
        """Returns once the provider accepted the message; raises when it did not."""
        raise NotImplementedError


class ConsoleBackend(BaseSmsBackend):
    def send(self, message: SmsMessage) -> None:
        logger.info("sms to %s [%s]: %s", message.to, message.idempotency_key, message.body)


class FileBackend(BaseSmsBackend):
    """Appends one line per message to settings.SMS_FILE_PATH (var/sms.log by default). Like a
    provider honouring idempotency keys, it accepts a key it already has without a second line."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path or getattr(settings, "SMS_FILE_PATH", "") or Path(settings.VAR_DIR) / "sms.log")

    def send(self, message: SmsMessage) -> None:
        self.append(message)

    def append(self, message: SmsMessage) -> bool:
        """Writes the message's line unless its key is already there; True when it wrote."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = message.body.replace("\n", " ")
        with self.path.open("a+", encoding="utf-8") as out:
            # One writer at a time across processes, so check-then-append cannot interleave.
            fcntl.flock(out, fcntl.LOCK_EX)
            out.seek(0)
            if any(line.split("\t", 2)[1:2] == [message.idempotency_key] for line in out):
                return False
            out.write(f"{timezone.now().isoformat()}\t{message.idempotency_key}\t{message.to}\t{body}\n")
            out.flush()
        return True


def get_backend() -> BaseSmsBackend:
    return import_string(getattr(settings, "SMS_BACKEND", "portal.notifications.sms.FileBackend"))()
