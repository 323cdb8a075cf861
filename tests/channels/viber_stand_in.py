"""A local stand-in of the Viber REST Bot API (chatapi.viber.com/pa), answering the recorded shapes in
fixtures/viber (reconstructed from Viber's REST Bot API documentation): every answer is HTTP 200 with a JSON
`status` (0 ok, 2 invalid token, 6 not subscribed, 12 too many requests...), as Viber answers."""

from __future__ import annotations

import itertools
import json

from tests.channels.conftest import Recorded, Reply, StandIn, fixture, json_reply

VIBER_TOKEN = "4453b6ac12345678-e02c5f12174805f9-daec9cbb5448c51f"


class ViberBotAPI:
    def __init__(self, token: str = VIBER_TOKEN) -> None:
        self.token = token
        self.fail_next: list[str] = []  # fixture names (response_not_subscribed...) for the next send_message calls
        self._ids = itertools.count(7_100_000_000_000_000_001)
        self.media: dict[str, tuple[str, bytes]] = {}  # served at /media/<name>
        self.server = StandIn(self._handle)
        self.url = self.server.url + "/pa"

    def _handle(self, r: Recorded) -> Reply:
        if r.path.startswith("/media/"):  # Viber's media links: public, no token, they expire (then 404)
            name = r.path.rsplit("/", 1)[-1]
            if name not in self.media:
                return 404, {"content-type": "text/plain"}, b"gone"
            ctype, data = self.media[name]
            return 200, {"content-type": ctype}, data
        if r.headers.get("x-viber-auth-token") != self.token:
            return json_reply(fixture("viber", "response_bad_token"))
        method = r.path.rsplit("/", 1)[-1]
        if method == "get_account_info":
            return json_reply(fixture("viber", "response_account_info"))
        if method == "set_webhook":
            return json_reply(fixture("viber", "response_set_webhook"))
        if method == "send_message":
            if self.fail_next:
                return json_reply(fixture("viber", self.fail_next.pop(0)))
            answer = fixture("viber", "response_send_message")
            answer["message_token"] = next(self._ids)
            return json_reply(answer)
        return json_reply({"status": 3, "status_message": "badData"})

    def sent(self) -> list[dict]:
        return [json.loads(r.body) for r in self.server.calls("/send_message")]

    def close(self) -> None:
        self.server.close()
