"""A scripted chat-completions server on loopback, for the LLM proposer's tests.

Each POST to /v1/chat/completions takes the next step of `script` (or calls `default` when the script
is used up) and records the request. A step is one of:
  ("answer", text)             200 with a chat completion whose message is `text`
  ("truncated", text)          the same, cut off at max_tokens (finish_reason "length")
  ("status", code)             an error status with an OpenAI-style error body (429 with Retry-After)
  ("sleep", seconds)           answer only after `seconds` (past the client's timeout)
  ("raw", body)                200 with `body` as is (not JSON)
`default` is a function of the request body that returns a step.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

Step = tuple[str, Any]


def completion(text: str, model: str = "test-model", finish: str = "stop") -> dict[str, Any]:
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200}}


class ChatServer:
    def __init__(self) -> None:
        self.script: list[Step] = []
        self.default: Callable[[dict[str, Any]], Step] = lambda body: ("answer", "no more answers scripted")
        self.requests: list[dict[str, Any]] = []  # bodies, in arrival order
        self.auth: list[str] = []  # Authorization headers, in arrival order
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with server.lock:
                    server.requests.append(body)
                    server.auth.append(self.headers.get("Authorization", ""))
                    step = server.script.pop(0) if server.script else server.default(body)
                server.respond(self, body, step)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True  # a sleeping handler must not hold up the tests' end
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def respond(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], step: Step) -> None:
        kind, arg = step
        headers = {"Content-Type": "application/json"}
        if kind in ("answer", "truncated"):
            finish = "length" if kind == "truncated" else "stop"
            status, payload = 200, json.dumps(completion(arg, body.get("model", ""), finish)).encode()
        elif kind == "status":
            status = arg
            payload = json.dumps({"error": {"message": f"scripted {arg}", "type": "test", "code": arg}}).encode()
            if arg == 429:
                headers["retry-after-ms"] = "20"
        elif kind == "sleep":
            time.sleep(arg)
            status, payload = 200, json.dumps(completion("too late")).encode()
        else:
            status, payload, headers = 200, str(arg).encode(), {"Content-Type": "text/plain"}
        try:
            handler.send_response(status)
            for k, v in headers.items():
                handler.send_header(k, v)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass

    def __enter__(self) -> "ChatServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
