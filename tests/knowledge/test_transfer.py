"""Import and export: JSONL and Markdown files with front matter, all or nothing, round trips, the CLI."""

from __future__ import annotations

import io
import json
import zipfile

from otklik.cli import main as cli
from otklik.knowledge.transfer import STORE_KB

ROWS = [
    {"id": "delivery", "title": "Доставка", "body": "Курьер — **390 ₽**.", "language": "ru", "category": "Доставка",
     "tags": ["доставка"], "questions": ["Сколько стоит доставка?"]},
    {"id": "en-delivery", "title": "Delivery", "body": "Courier: 390 RUB.", "language": "en",
     "category": "Доставка", "translation_of": "delivery"},
    {"id": "draft", "title": "Черновик", "body": "Ещё не готово.", "published": False},
]


def jsonl(rows) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def upload(client, ws, name, data, headers=None):
    return client.post("/api/v1/knowledge/import", files={"file": (name, data, "application/octet-stream")},
                       headers=headers or ws.admin)


def test_jsonl_import_update_and_round_trip(client, ws):
    assert upload(client, ws, "kb.jsonl", jsonl(ROWS), ws.agent).status_code == 403
    r = upload(client, ws, "kb.jsonl", jsonl(ROWS))
    assert r.status_code == 200, r.text
    assert r.json() == {"created": 3, "updated": 0, "unchanged": 0, "ids": ["delivery", "en-delivery", "draft"]}
    articles = {a["slug"]: a for a in client.get("/api/v1/articles", headers=ws.agent).json()}
    assert articles["en-delivery"]["translation_of_id"] == articles["delivery"]["id"]
    assert articles["draft"]["published"] is False and articles["delivery"]["questions"] == ["Сколько стоит доставка?"]
    # importing again: unchanged; a changed row: a new version of the same article
    changed = [dict(ROWS[0], body="Курьер — **490 ₽**."), *ROWS[1:]]
    again = upload(client, ws, "kb.jsonl", jsonl(changed)).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 1, 2)
    versions = client.get(f"/api/v1/articles/{articles['delivery']['id']}/versions", headers=ws.agent).json()
    assert [v["note"] for v in versions] == ["imported", "created"]
    exported = client.get("/api/v1/knowledge/export", headers=ws.agent)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in exported.text.splitlines()]
    assert [r["id"] for r in rows] == ["delivery", "draft", "en-delivery"]  # originals first
    assert rows[0]["body"] == "Курьер — **490 ₽**." and rows[2]["translation_of"] == "delivery"


def test_markdown_zip_round_trip_into_another_workspace(client, ws, other_ws):
    upload(client, ws, "kb.jsonl", jsonl(ROWS))
    data = client.get("/api/v1/knowledge/export", params={"format": "markdown"}, headers=ws.admin)
    assert data.headers["content-type"] == "application/zip"
    names = sorted(zipfile.ZipFile(io.BytesIO(data.content)).namelist())
    assert names == ["en/en-delivery.md", "ru/delivery.md", "ru/draft.md"]
    text = zipfile.ZipFile(io.BytesIO(data.content)).read("ru/delivery.md").decode()
    assert text.startswith("---\nid: delivery\ntitle: Доставка\n") and text.rstrip().endswith("Курьер — **390 ₽**.")
    r = upload(client, other_ws, "kb.zip", data.content)
    assert r.status_code == 200 and r.json()["created"] == 3
    theirs = client.get("/api/v1/knowledge/export", headers=other_ws.admin).text
    mine = client.get("/api/v1/knowledge/export", headers=ws.admin).text
    assert theirs == mine


def test_single_markdown_file_with_and_without_front_matter(client, ws):
    md = "---\nid: pickup\ntitle: Пункты выдачи\ntags: [пвз, самовывоз]\ncategory: Доставка\n---\n\nХранение — 7 дней.\n"
    r = upload(client, ws, "pickup.md", md.encode())
    assert r.status_code == 200 and r.json()["ids"] == ["pickup"]
    r = upload(client, ws, "hours.md", "# Режим работы\n\nЕжедневно с 8:00 до 22:00.\n".encode())
    assert r.status_code == 200
    articles = client.get("/api/v1/articles", headers=ws.admin).json()
    article = next(a for a in articles if a["title"] == "Режим работы")
    assert article["body"] == "Ежедневно с 8:00 до 22:00." and article["slug"] == "rezhim-raboty"


def test_bad_files_are_refused_whole_with_every_problem(client, ws):
    bad = (jsonl(ROWS[:1]) + b"{not json\n" + jsonl([{"title": "", "body": "x"}, {"id": "Bad Id", "title": "x",
                                                                                 "body": "x", "language": "rus"}]))
    r = upload(client, ws, "kb.jsonl", bad)
    assert r.status_code == 422
    messages = [f["message"] for f in r.json()["error"]["fields"]]
    assert any(m.startswith("line 2: not valid JSON") for m in messages)
    assert any(m.startswith("line 3: title") for m in messages)
    assert any(m.startswith("line 4: id") for m in messages) and any("line 4: language" in m for m in messages)
    assert client.get("/api/v1/articles", headers=ws.admin).json() == []  # nothing imported
    cases = [
        ("kb.jsonl", jsonl([ROWS[0], ROWS[0]])),  # an id twice
        ("kb.jsonl", jsonl([ROWS[1]])),  # translation of a missing article
        ("kb.jsonl", b"\xff\xfe\x00garbage"),
        ("kb.jsonl", b"[1, 2]\n"),
        ("kb.jsonl", jsonl([{**ROWS[0], "tags": "not a list"}])),
        ("kb.jsonl", jsonl([{**ROWS[0], "evil": True}])),
        ("kb.jsonl", b"\n\n"),
        ("kb.zip", b"PK not really a zip"),
        ("kb.exe", b"MZ"),
        ("kb.md", b"---\n: [unbalanced\n---\nbody"),
    ]
    for name, data in cases:
        r = upload(client, ws, name, data)
        assert r.status_code == 422, (name, data, r.text)
    assert client.post("/api/v1/knowledge/import", headers=ws.admin).status_code == 422  # no file
    assert client.get("/api/v1/knowledge/export", params={"format": "pdf"}, headers=ws.admin).status_code == 422


def test_zip_bomb_is_refused(client, ws):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.md", "a" * (60 * 1_048_576))
    assert len(buffer.getvalue()) < 1_000_000
    r = upload(client, ws, "kb.zip", buffer.getvalue())
    assert r.status_code == 413


def test_store_kb_through_the_cli(ws, capsys):
    assert cli(["kb", "import", str(STORE_KB), "--workspace", ws.slug]) == 0
    assert "71 created" in capsys.readouterr().out
    assert cli(["kb", "import", str(STORE_KB), "--workspace", ws.slug]) == 0
    assert "71 unchanged" in capsys.readouterr().out
    assert cli(["kb", "export", "--workspace", ws.slug]) == 0
    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    original = [json.loads(line) for line in STORE_KB.read_text().splitlines()]
    assert {r["id"]: (r["title"], r["body"], r.get("translation_of")) for r in exported} == {
        r["id"]: (r["title"], r["body"], r.get("translation_of")) for r in original}
    assert cli(["kb", "import", str(STORE_KB), "--workspace", "no-such-workspace"]) == 2
