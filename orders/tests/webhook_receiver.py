"""A real HTTP receiver on 127.0.0.1 for webhook tests: records every request and answers with
the statuses it is told to (200 once they run out)."""

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=list)
    hang_first: threading.Event | None = None  # while set, the first request hangs unanswered
    received: list[Received] = field(default_factory=list)
    got_request: threading.Event = field(default_factory=threading.Event)
    location: str | None = None  # sent as Location with every answer, to answer 3xx redirects

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                first = not receiver.received
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if first and receiver.hang_first is not None:
                    receiver.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body, 0))
                    receiver.got_request.set()
                    receiver.hang_first.wait(30)
                    return
                receiver.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body, status))
                receiver.got_request.set()
                self.send_response(status)
                if receiver.location is not None:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def stop(self) -> None:
        if self.hang_first is not None:
            self.hang_first.set()
        self.server.shutdown()
        self.server.server_close()

    def ok_ids(self) -> list[str]:
        return [item.headers["webhook-id"] for item in self.received if 200 <= item.status < 300]
