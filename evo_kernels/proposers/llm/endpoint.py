"""One chat-completions endpoint through the `openai` client, behind a disk cache of its answers.

Any OpenAI-compatible server works (OpenAI, vLLM, Ollama, LM Studio): the base URL is the model's
`base_url` or the client's own OPENAI_BASE_URL, the key is read from the environment variable the
config names, in this (driver) process only. The key never enters a request body, a cache file, an
error text or the store.

Failures (timeouts, connection errors, 408/409/429, 5xx, answers without a message) are retried with
exponential backoff here, a Retry-After header winning, and each failed attempt is counted; when
the retries run out the ask gets an `Answer` with `error` set, never an exception, so the search
goes on. Only answers are cached: a failure is asked again by a later run.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ...config import LLMConfig, LLMModel

_KEYLIKE = re.compile(r"\b(sk|key|token)-[A-Za-z0-9_\-*]{6,}", re.I)
_MAX_WAIT_S = 60.0  # a Retry-After longer than this is not waited for in full


@dataclass
class Answer:
    text: str = ""
    finish_reason: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    error: str = ""  # set when no answer came back (after the retries)
    failed_attempts: list[str] = field(default_factory=list)  # kinds of the attempts that failed


def request_key(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


class Cache:
    """One JSON file per answer, written atomically: a killed run leaves whole files or none."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.root / f"{key}.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def put(self, key: str, record: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
        tmp.replace(self.root / f"{key}.json")


class Endpoint:
    def __init__(self, model: LLMModel, cfg: LLMConfig, cache: Cache,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.model, self.cfg, self.cache, self.sleep = model, cfg, cache, sleep
        self._client: Any = None
        self._lock = threading.Lock()  # asks run in threads: build one client

    def _secret(self) -> str:
        return os.environ.get(self.model.api_key_env, "")

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from openai import OpenAI
                # Local servers (Ollama, vLLM without --api-key) take any key, but the client wants one.
                self._client = OpenAI(base_url=self.model.base_url or None, api_key=self._secret() or "not-needed",
                                      timeout=self.cfg.timeout_s, max_retries=0)
            return self._client

    def request(self, messages: list[dict[str, str]], seed: int) -> dict[str, Any]:
        """The request body (no key in it)."""
        body: dict[str, Any] = {"model": self.model.name, "messages": messages, "seed": seed,
                                self.model.token_limit_field: self.model.max_tokens}
        if self.model.temperature is not None:
            body["temperature"] = self.model.temperature
        return body

    def ask(self, key: str, body: dict[str, Any]) -> Answer:
        hit = self.cache.get(key)
        if hit is not None:
            return Answer(text=hit["answer"], finish_reason=hit.get("finish_reason", ""), cached=True,
                          prompt_tokens=hit.get("usage", {}).get("prompt_tokens", 0),
                          completion_tokens=hit.get("usage", {}).get("completion_tokens", 0))
        if self.cfg.offline:
            return Answer(error="offline: this request is not in the cache (llm.offline is on)")
        answer = self._ask_with_retries(body)
        if not answer.error:
            self.cache.put(key, {"key": key, "model": self.model.name, "request": body, "answer": answer.text,
                                 "finish_reason": answer.finish_reason, "created": time.time(),
                                 "usage": {"prompt_tokens": answer.prompt_tokens,
                                           "completion_tokens": answer.completion_tokens}})
        return answer

    def _ask_with_retries(self, body: dict[str, Any]) -> Answer:
        import openai
        failed: list[str] = []
        last = ""
        for attempt in range(self.cfg.max_retries + 1):
            wait = self.cfg.backoff_s * 2 ** attempt
            try:
                resp = self.client().chat.completions.create(**body)
                choice = resp.choices[0]
                text = choice.message.content
                if not isinstance(text, str):
                    raise ValueError("the answer has no message content")
                usage = getattr(resp, "usage", None)
                return Answer(text=text, finish_reason=str(choice.finish_reason or ""), failed_attempts=failed,
                              prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                              completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0))
            except openai.APITimeoutError as e:
                kind, last = "timeout", str(e)
            except openai.APIConnectionError as e:
                kind, last = "connection", str(e)
            except openai.APIStatusError as e:
                kind, last = f"http_{e.status_code}", str(e.message)
                if not (e.status_code in (408, 409, 429) or e.status_code >= 500):
                    failed.append(kind)  # a bad request, a bad key, an unknown model: retrying cannot help
                    break
                wait = _retry_after(e.response) or wait
            except (openai.APIResponseValidationError, ValueError, TypeError, AttributeError, IndexError) as e:
                kind, last = "malformed", f"{type(e).__name__}: {e}"
            failed.append(kind)
            if attempt < self.cfg.max_retries:
                self.sleep(min(wait, _MAX_WAIT_S))
        return Answer(error=f"{failed[-1]} after {len(failed)} attempt(s): {self._scrub(last)}", failed_attempts=failed)

    def _scrub(self, text: str) -> str:
        """Error texts go to the store: no key, not even a partly masked one."""
        secret = self._secret()
        if secret:
            text = text.replace(secret, "***")
        return _KEYLIKE.sub("***", text)[:500]


def _retry_after(response: Any) -> float:
    headers = getattr(response, "headers", None) or {}
    try:
        if "retry-after-ms" in headers:
            return float(headers["retry-after-ms"]) / 1000
        return float(headers.get("retry-after", 0))
    except ValueError:
        return 0.0
