"""A streamed XLSX file, written by hand: a zip of five small XML parts, the sheet written row by row into the
zip's stream (zipfile writes to a stream it cannot seek with data descriptors), so memory stays flat at any size.
No dependency: an .xlsx needs only SpreadsheetML's minimum (workbook, one sheet, inline strings), which Excel,
LibreOffice and Google Sheets open. Text cells are inline strings (never a formula); numbers are numbers."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator, Sequence
from xml.sax.saxutils import escape

CONTENT_TYPES = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                 '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                 '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                 '<Default Extension="xml" ContentType="application/xml"/>'
                 '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
                 'spreadsheetml.sheet.main+xml"/>'
                 '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
                 'officedocument.spreadsheetml.worksheet+xml"/></Types>')
RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        'officeDocument" Target="xl/workbook.xml"/></Relationships>')
WORKBOOK_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                 '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                 '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                 'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')
SHEET_HEAD = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
              '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
SHEET_TAIL = "</sheetData></worksheet>"
MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _workbook(name: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f'<sheets><sheet name="{escape(name[:31])}" sheetId="1" r:id="rId1"/></sheets></workbook>')


def _column(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _clean(text: str) -> str:
    """XML 1.0 takes no control characters but tab, newline and carriage return."""
    return "".join(ch for ch in text if ch >= " " or ch in "\t\n\r")


def row_xml(number: int, cells: Sequence[object]) -> str:
    out = [f'<row r="{number}">']
    for i, value in enumerate(cells):
        ref = f"{_column(i)}{number}"
        if isinstance(value, bool) or value is None or value == "":
            if value in (None, ""):
                continue
            value = "yes" if value else "no"
        if isinstance(value, int | float):
            out.append(f'<c r="{ref}"><v>{value}</v></c>')
        else:
            text = escape(_clean(str(value)))
            out.append(f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>')
    out.append("</row>")
    return "".join(out)


class _Sink:
    """A write-only stream zipfile writes into; what it got so far is taken out between rows."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def stream(sheet: str, header: Sequence[str], batches: Iterable[Sequence[Sequence[object]]]) -> Iterator[bytes]:
    """The .xlsx bytes, a chunk per batch of rows."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:  # type: ignore[call-overload]
        for name, text in (("[Content_Types].xml", CONTENT_TYPES), ("_rels/.rels", RELS),
                           ("xl/workbook.xml", _workbook(sheet)), ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)):
            archive.writestr(name, text)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as part:
            part.write((SHEET_HEAD + row_xml(1, header)).encode())
            number = 1
            for rows in batches:
                chunk = []
                for row in rows:
                    number += 1
                    chunk.append(row_xml(number, row))
                part.write("".join(chunk).encode())
                yield sink.take()
            part.write(SHEET_TAIL.encode())
    yield sink.take()
