"""The notes sample (apps/samples/notes), the skeleton docs/web.md starts from: it must keep
doing what the page says it does."""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
from pathlib import Path

from openapi_spec_validator import validate


def call(port: int, method: str, path: str, body: str | None = None, **headers: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
    connection.request(method, path, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})
    response = connection.getresponse()
    status, data = response.status, response.read()
    connection.close()
    return status, data


def test_the_sample_serves_what_the_docs_say(notes_bin: Path, tmp_path: Path) -> None:
    process = subprocess.Popen(
        [str(notes_bin), "--port", "0", "--db", str(tmp_path / "notes.sqlite3")],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        match = re.search(r"serving http://127\.0\.0\.1:(\d+)", process.stderr.readline())
        assert match, "notes did not report its port"
        port = int(match.group(1))
        status, body = call(port, "POST", "/notes", json.dumps({"text": "hi"}))
        assert status == 201 and json.loads(body) == {"id": 1, "text": "hi", "pinned": False}
        assert call(port, "GET", "/notes/1") == (200, body)
        status, body = call(port, "POST", "/notes", json.dumps({"text": "top", "pinned": True}))
        assert status == 201 and json.loads(body) == {"id": 2, "text": "top", "pinned": True}
        status, body = call(port, "POST", "/notes", json.dumps({"txt": "x"}))
        assert status == 400 and b"body.text" in body
        status, body = call(port, "POST", "/notes", json.dumps({"text": ""}))
        assert status == 400 and json.loads(body)["error"]["field"] == "body.text"
        status, body = call(port, "GET", "/openapi.json")
        paths = json.loads(body)["paths"]
        assert status == 200 and set(paths) == {"/notes", "/notes/{id}", "/admin/notes"}
        # What the typed handlers' signatures declare, beside the words their docs add.
        add = paths["/notes"]["post"]
        assert add["summary"] == "Add a note" and set(add["responses"]) == {"201", "400"}
        assert "application/json" in add["requestBody"]["content"]
        assert set(paths["/notes/{id}"]["get"]["responses"]) == {"200", "400", "404"}  # 400: past int64
        clear = paths["/admin/notes"]["delete"]
        assert set(clear["responses"]) == {"204", "400", "401", "403"} and clear["security"] == [
            {"bearer": []}
        ]
        validate(json.loads(body))  # the OpenAPI specification's own validator
        assert call(port, "GET", "/notes/9")[0] == 404
        assert call(port, "DELETE", "/admin/notes")[0] == 401
        assert call(port, "DELETE", "/admin/notes", Authorization="Bearer guess")[0] == 403
        assert call(port, "DELETE", "/admin/notes", Authorization="Bearer let-me-in")[0] == 204
        # The admin group's own middleware marks its answers, refusals included.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("DELETE", "/admin/notes")
        refused = connection.getresponse()
        assert refused.status == 401 and refused.getheader("Cache-Control") == "no-store"
        connection.close()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/notes/1")
        assert connection.getresponse().getheader("Cache-Control") is None
        connection.close()
        assert call(port, "GET", "/notes/1")[0] == 404
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
