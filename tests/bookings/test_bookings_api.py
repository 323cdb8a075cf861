"""/api/v1/bookings: services, installers, slots, bookings create/cancel/reschedule/status; 422 naming the field,
404 across workspaces, 409 on a taken slot, roles."""

from __future__ import annotations

from tests.bookings._setup import make_shop
from tests.conftest import inbound

DAY = "2027-03-01T00:00:00+03:00"
NEXT = "2027-03-02T00:00:00+03:00"


def _calendar(client, ws):
    r = client.post("/api/v1/calendars", json={"name": "Бригада", "time_zone": "Europe/Moscow",
                                               "hours": {d: [["09:00", "18:00"]] for d in
                                                         ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}},
                    headers=ws.admin)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_services_installers_slots_and_booking_through_the_api(client, ws):
    cal = _calendar(client, ws)
    svc = client.post("/api/v1/bookings/services", json={"name": "Сборка кухни", "kind": "assembly",
                                                         "duration_minutes": 180, "price": 4990.5},
                      headers=ws.admin)
    assert svc.status_code == 201, svc.text
    assert svc.json()["price"] == 4990.5 and svc.json()["duration_minutes"] == 180
    inst = client.post("/api/v1/bookings/installers", json={"name": "Сергей", "calendar_id": cal,
                                                            "user_id": ws.agent_id, "areas": ["Москва", "Зеленоград"]},
                       headers=ws.admin)
    assert inst.status_code == 201, inst.text
    assert inst.json()["areas"] == ["москва", "зеленоград"]
    assert [s["name"] for s in client.get("/api/v1/bookings/services", headers=ws.agent).json()] == ["Сборка кухни"]
    sid, iid = svc.json()["id"], inst.json()["id"]
    slots = client.get("/api/v1/bookings/slots", params={"service_id": sid, "from": DAY, "to": NEXT,
                                                         "area": "Зеленоград"}, headers=ws.agent)
    assert slots.status_code == 200, slots.text
    body = slots.json()
    # 09:00–18:00, 3 hours, half-hour grid: 09:00 … 15:00 = 13 starts
    assert body["total"] == 13 and body["slots"][0] == {"installer_id": iid, "start": "2027-03-01T06:00:00+00:00",
                                                         "end": "2027-03-01T09:00:00+00:00"}
    assert len(body["offer"]) == 3
    got = inbound(client, ws, identity="buyer@example.com", text="Хочу собрать кухню")
    r = client.post("/api/v1/bookings", json={"service_id": sid, "start": "2027-03-01T09:00:00+03:00",
                                              "customer_id": got["customer_id"],
                                              "conversation_id": got["conversation_id"], "area": "Москва",
                                              "address": "ул. Ленина, 1"}, headers=ws.agent)
    assert r.status_code == 201, r.text
    booking = r.json()
    assert booking["installer_id"] == iid and booking["status"] == "booked" and booking["price"] == 4990.5
    assert booking["end"] == "2027-03-01T09:00:00+00:00" and "/booking/" in booking["link"]
    # the confirmation went to the customer's conversation
    messages = client.get(f"/api/v1/conversations/{got['conversation_id']}/messages", headers=ws.agent).json()
    texts = [m.get("body_text") or m.get("text") or "" for m in (messages.get("items", messages)
                                                                  if isinstance(messages, dict) else messages)]
    assert any("Записали вас" in t and "ул. Ленина, 1" in t for t in texts)
    taken = client.post("/api/v1/bookings", json={"service_id": sid, "start": "2027-03-01T10:30:00+03:00",
                                                  "customer_id": got["customer_id"], "installer_id": iid},
                        headers=ws.agent)
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "slot_taken"
    bid = booking["id"]
    moved = client.post(f"/api/v1/bookings/{bid}/reschedule", json={"start": "2027-03-02T14:00:00+03:00"},
                        headers=ws.agent)
    assert moved.status_code == 200 and moved.json()["start"] == "2027-03-02T11:00:00+00:00", moved.text
    assert client.get(f"/api/v1/bookings/{bid}", headers=ws.agent).json()["reschedules"] == 1
    listed = client.get("/api/v1/bookings", params={"customer_id": got["customer_id"]}, headers=ws.agent).json()
    assert [b["id"] for b in listed] == [bid]
    cancelled = client.post(f"/api/v1/bookings/{bid}/cancel", headers=ws.agent)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    # the time is free again
    again = client.post("/api/v1/bookings", json={"service_id": sid, "start": "2027-03-02T14:00:00+03:00",
                                                  "customer_id": got["customer_id"], "confirm": False},
                        headers=ws.agent)
    assert again.status_code == 201, again.text
    assert client.post(f"/api/v1/bookings/{again.json()['id']}/status", json={"status": "done"},
                       headers=ws.agent).status_code == 422  # not started yet


def _field(r):
    assert r.status_code == 422, r.text
    return {f["field"] for f in r.json()["error"]["fields"]}


def test_bad_input_is_a_422_naming_the_field(client, ws):
    shop = make_shop(ws)
    got = inbound(client, ws, identity="bad@example.com", text="Соберите шкаф")
    post = client.post
    assert "kind" in str(_field(post("/api/v1/bookings/services", json={"name": "X", "kind": "dance",
                                                                        "duration_minutes": 60, "price": 1},
                                     headers=ws.admin)))
    assert "duration_minutes" in str(_field(post("/api/v1/bookings/services", json={
        "name": "Y", "kind": "assembly", "duration_minutes": 45, "price": 1}, headers=ws.admin)))
    assert "price" in str(_field(post("/api/v1/bookings/services", json={
        "name": "Z", "kind": "assembly", "duration_minutes": 60, "price": -5}, headers=ws.admin)))
    assert "name" in str(_field(post("/api/v1/bookings/services", json={
        "name": "N\x00", "kind": "assembly", "duration_minutes": 60, "price": 1}, headers=ws.admin)))
    assert "areas.0" in str(_field(post("/api/v1/bookings/installers", json={
        "name": "A", "calendar_id": shop.calendar_id, "areas": ["Мос\x00ква"]}, headers=ws.admin)))
    assert "calendar_id" in str(_field(post("/api/v1/bookings/installers", json={"name": "N", "calendar_id": 999999},
                                            headers=ws.admin)))
    assert "areas.0" in str(_field(post("/api/v1/bookings/installers", json={
        "name": "M", "calendar_id": shop.calendar_id, "areas": ["  "]}, headers=ws.admin)))
    get = client.get
    assert "from" in str(_field(get("/api/v1/bookings/slots", params={"service_id": shop.assembly_id,
                                                                      "from": "вчера", "to": NEXT}, headers=ws.agent)))
    assert "to" in str(_field(get("/api/v1/bookings/slots", params={"service_id": shop.assembly_id,
                                                                    "from": NEXT, "to": DAY}, headers=ws.agent)))
    assert "to" in str(_field(get("/api/v1/bookings/slots", params={
        "service_id": shop.assembly_id, "from": DAY, "to": "2027-06-01T00:00:00+03:00"}, headers=ws.agent)))
    assert "service_id" in str(_field(get("/api/v1/bookings/slots", params={"from": DAY, "to": NEXT},
                                          headers=ws.agent)))
    base = {"service_id": shop.assembly_id, "customer_id": got["customer_id"], "installer_id": shop.ivan_id}
    assert "start" in str(_field(post("/api/v1/bookings", json={**base, "start": "2027-03-01T10:10:00+03:00"},
                                      headers=ws.agent)))
    assert "start" in str(_field(post("/api/v1/bookings", json={**base, "start": "2020-03-01T10:00:00+03:00"},
                                      headers=ws.agent)))
    assert "start" in str(_field(post("/api/v1/bookings", json={**base, "start": "2027-03-01T10:00:00"},
                                      headers=ws.agent)))
    assert "customer_id" in str(_field(post("/api/v1/bookings", json={**base, "customer_id": 999999,
                                                                      "start": "2027-03-01T10:00:00+03:00"},
                                            headers=ws.agent)))
    assert "service_id" in str(_field(post("/api/v1/bookings", json={**base, "service_id": 999999,
                                                                     "start": "2027-03-01T10:00:00+03:00"},
                                           headers=ws.agent)))
    assert "status" in str(_field(post("/api/v1/bookings/1/status", json={"status": "great"},
                                       headers=ws.agent)))


def test_other_workspaces_objects_are_404_and_agents_cannot_change_the_catalogue(client, ws, other_ws):
    shop = make_shop(ws)
    got = inbound(client, ws, identity="mine@example.com", text="Соберите шкаф")
    r = client.post("/api/v1/bookings", json={"service_id": shop.assembly_id, "start": "2027-03-05T10:00:00+03:00",
                                              "customer_id": got["customer_id"], "confirm": False},
                    headers=ws.agent)
    bid = r.json()["id"]
    o = other_ws.agent
    assert client.get(f"/api/v1/bookings/{bid}", headers=o).status_code == 404
    assert client.post(f"/api/v1/bookings/{bid}/cancel", headers=o).status_code == 404
    assert client.post(f"/api/v1/bookings/{bid}/reschedule", json={"start": "2027-03-06T10:00:00+03:00"},
                       headers=o).status_code == 404
    assert client.post(f"/api/v1/bookings/{bid}/status", json={"status": "missed"}, headers=o).status_code == 404
    assert client.get("/api/v1/bookings/slots", params={"service_id": shop.assembly_id, "from": DAY, "to": NEXT},
                      headers=o).status_code == 404
    assert client.patch(f"/api/v1/bookings/services/{shop.assembly_id}", json={"price": 1},
                        headers=other_ws.admin).status_code == 404
    assert client.patch(f"/api/v1/bookings/installers/{shop.ivan_id}", json={"name": "X"},
                        headers=other_ws.admin).status_code == 404
    assert client.get("/api/v1/bookings", headers=o).json() == []
    # a booking for another workspace's customer or into its conversation: named, not found
    other_customer = inbound(client, other_ws, identity="theirs@example.com", text="Привет")
    r = client.post("/api/v1/bookings", json={"service_id": shop.assembly_id, "start": "2027-03-05T14:00:00+03:00",
                                              "customer_id": other_customer["customer_id"]}, headers=ws.agent)
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "customer_id"
    # roles: an agent books but does not change services or installers
    assert client.post("/api/v1/bookings/services", json={"name": "A", "kind": "assembly", "duration_minutes": 60,
                                                          "price": 1}, headers=ws.agent).status_code == 403
    assert client.patch(f"/api/v1/bookings/installers/{shop.ivan_id}", json={"active": False},
                        headers=ws.agent).status_code == 403
    # missed: the penalty shows
    missed = client.post(f"/api/v1/bookings/{bid}/status", json={"status": "missed"}, headers=ws.agent)
    assert missed.status_code == 200 and missed.json()["missed_on"] == "2027-03-05"
    assert "28" in missed.json()["penalty_rule"]
