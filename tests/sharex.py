"""Build an upload request exactly as ShareX does from a ``.sxcu`` file, and read its answer.

ShareX (``CustomUploaderItem``/``UploadHelpers``) appends ``Parameters`` to ``RequestURL`` as a
query string, sends ``Headers`` as they are plus its own ``User-Agent``, and for
``"Body": "MultipartFormData"`` a multipart body with a ``------------------------<ticks hex>``
boundary whose one file part is named ``FileFormName``, with the file's name and a content
type guessed from its extension. ``URL``/``DeletionURL``/``ErrorMessage`` templates such as
``{json:a.b}`` are then read from the JSON answer.
"""
from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urlencode

SHAREX_USER_AGENT = "ShareX/16.1.0"


def sharex_request(cfg: dict[str, Any], file_name: str, data: bytes) -> tuple[str, dict[str, str], bytes]:
    """``(url, headers, body)`` of the upload ShareX sends for ``cfg`` (a parsed ``.sxcu``)."""
    assert cfg["RequestMethod"] == "POST" and cfg["Body"] == "MultipartFormData"
    url = cfg["RequestURL"]
    if cfg.get("Parameters"):
        url += "?" + urlencode(cfg["Parameters"])
    boundary = "-" * 24 + format(time.time_ns() // 100, "x")
    mime = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif"}[file_name.rsplit(".", 1)[-1]]
    parts = [f"--{boundary}\r\n".encode()]
    for name, value in (cfg.get("Arguments") or {}).items():
        parts.append(f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n--{boundary}\r\n'.encode())
    parts.append(
        f'Content-Disposition: form-data; name="{cfg["FileFormName"]}"; filename="{file_name}"\r\n'
        f"Content-Type: {mime}\r\n\r\n".encode()
    )
    body = b"".join(parts) + data + f"\r\n--{boundary}--\r\n".encode()
    headers = {**cfg.get("Headers", {}), "User-Agent": SHAREX_USER_AGENT,
               "Content-Type": f"multipart/form-data; boundary={boundary}"}
    return url, headers, body


def sharex_template(template: str, answer: bytes) -> str:
    """Fill ``{json:a.b}`` placeholders from the JSON answer as ShareX does (missing/null: empty)."""
    data = json.loads(answer)

    def lookup(match: re.Match) -> str:
        value: Any = data
        for key in match.group(1).split("."):
            value = value.get(key) if isinstance(value, dict) else None
        return "" if value is None else str(value)

    return re.sub(r"\{json:([^}]+)\}", lookup, template)
