"""A minimal JSON-RPC client over urllib for the CLI (no web3 needed at run time)."""
from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request

from cli.errors import CommandError


class RpcClient:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout
        self._ids = itertools.count(1)

    def call(self, method: str, *params):
        body = json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)})
        request = urllib.request.Request(self.url, body.encode(), {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                reply = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            reply = json.loads(exc.read() or b"{}")
        except (urllib.error.URLError, OSError) as exc:
            raise CommandError(f"cannot reach {self.url}: {getattr(exc, 'reason', exc)}") from None
        if "error" in reply:
            raise CommandError(f"{method}: {reply['error'].get('message')}")
        return reply["result"]
