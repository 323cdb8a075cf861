"""The XLSX export: the CSV's table as a workbook, streamed; a valid zip of SpreadsheetML parts with typed cells
(numbers as numbers, text as inline strings: a formula-looking subject stays text); 422 and 403 as the CSV."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile

from otklik.platform.db import utcnow
from otklik.reports import xlsx
from tests.conftest import inbound

NS = {"s": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def sheet_rows(data: bytes) -> list[list[str]]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert {"[Content_Types].xml", "_rels/.rels", "xl/workbook.xml", "xl/_rels/workbook.xml.rels",
            "xl/worksheets/sheet1.xml"} <= set(archive.namelist())
    root = ET.fromstring(archive.read("xl/worksheets/sheet1.xml"))
    rows = []
    for row in root.iter(f"{{{NS['s']}}}row"):
        cells: list = []
        for c in row:  # an empty cell is left out: place each by its column letters
            column = sum((ord(ch) - 64) * 26 ** i for i, ch in enumerate(reversed(c.get("r").rstrip("0123456789"))))
            cells.extend([("", "")] * (column - 1 - len(cells)))
            if c.get("t") == "inlineStr":
                cells.append(("s", c.find("s:is/s:t", NS).text or ""))
            else:
                cells.append(("n", c.find("s:v", NS).text))
        rows.append(cells)
    return rows


def test_xlsx_export_is_a_workbook_with_typed_cells(client, ws):
    inbound(client, ws, identity="x1@example.com", text="=HYPERLINK(\"http://evil\") Привет")
    day = utcnow().date().isoformat()
    r = client.get("/api/v1/reports/conversations.xlsx", params={"from": "2026-01-01", "to": day},
                   headers=ws.admin)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == xlsx.MEDIA_TYPE and ".xlsx" in r.headers["content-disposition"]
    rows = sheet_rows(r.content)
    assert [v for _, v in rows[0]][:3] == ["number", "created_at", "channel"]
    assert len(rows) == 2
    body = dict(zip([v for _, v in rows[0]], rows[1], strict=False))
    assert body["number"][0] == "n" and body["channel"] == ("s", "api")
    assert body["subject"][1].startswith("'=HYPERLINK") and "Привет" in body["subject"][1]
    assert client.get("/api/v1/reports/conversations.xlsx", params={"from": "2026-01-01", "to": day},
                      headers=ws.agent).status_code == 403
    assert client.get("/api/v1/reports/conversations.xlsx", params={"from": "x", "to": day},
                      headers=ws.admin).status_code == 422


def test_stream_writes_rows_as_they_come():
    batches = [[(i, f"строка {i}", "\x01bad\x02") for i in range(b * 3, b * 3 + 3)] for b in range(4)]
    chunks = list(xlsx.stream("t", ("n", "text", "ctrl"), batches))
    assert len(chunks) == 5  # one per batch, then the end of the zip
    rows = sheet_rows(b"".join(chunks))
    assert len(rows) == 13 and rows[12] == [("n", "11"), ("s", "строка 11"), ("s", "bad")]
    assert xlsx._column(0) == "A" and xlsx._column(25) == "Z" and xlsx._column(26) == "AA"
