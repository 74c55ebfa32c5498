"""A real HTTP server on 127.0.0.1 that replays recorded YouTube Data API v3 responses.

videos.list / channels.list answer with the recorded items (tests/data/youtube_api) whose ids
were asked for, in the real response envelope. `script` queues canned answers (status + file)
that are served first, one per request, to replay errors: 403 quota, 404, malformed JSON...
Every request is recorded (path, query, whether the key header was sent).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

DATA = Path(__file__).resolve().parents[1] / "data" / "youtube_api"


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


class YouTubeReplayServer:
    def __init__(self) -> None:
        videos = json.loads(load("videos__video_api_response.json"))
        channels = json.loads(load("channels__info_multiple.json"))
        channels_single = json.loads(load("channels__channel_api_response.json"))
        self.envelopes = {"videos": videos, "channels": channels}
        self.items = {
            "videos": {i["id"]: i for i in videos["items"]},
            "channels": {i["id"]: i for i in channels["items"] + channels_single["items"]},
        }
        self.script: list[tuple[int, bytes]] = []
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                endpoint = url.path.rstrip("/").rsplit("/", 1)[-1]
                with server._lock:
                    server.requests.append(
                        {
                            "endpoint": endpoint,
                            "query": query,
                            "ids": [i for i in query.get("id", "").split(",") if i],
                            "api_key_header": self.headers.get("X-Goog-Api-Key"),
                        }
                    )
                    canned = server.script.pop(0) if server.script else None
                if canned is not None:
                    status, body = canned
                else:
                    status, body = server._answer(endpoint, query)
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _answer(self, endpoint: str, query: dict) -> tuple[int, bytes]:
        if endpoint not in self.items:
            return 404, load("errors__not_found_404.json")
        ids = [i for i in query.get("id", "").split(",") if i]
        items = [self.items[endpoint][i] for i in ids if i in self.items[endpoint]]
        envelope = dict(self.envelopes[endpoint])
        envelope["items"] = items
        envelope["pageInfo"] = {"totalResults": len(items), "resultsPerPage": len(items)}
        return 200, json.dumps(envelope).encode()

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/youtube/v3"

    def __enter__(self) -> YouTubeReplayServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
