"""Small PDFs made in the tests with pypdf (nothing downloaded or committed): pages of text
lines, each drawn in Helvetica at its own size, so headings can be told from the body."""

from __future__ import annotations

import io
from collections.abc import Sequence

from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

Line = tuple[float, str]
"""(font size in points, text) of one line."""


def make_pdf(
    pages: Sequence[Sequence[Line]], *, title: str | None = None, password: str | None = None
) -> bytes:
    """A PDF whose pages draw `pages`' lines top-down, 1.6 line heights apart."""
    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    font_ref = writer._add_object(font)
    for lines in pages:
        page = writer.add_blank_page(612, 792)
        ops, y = ["BT"], 740.0
        for size, text in lines:
            escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"/F1 {size} Tf 1 0 0 1 72 {y:.1f} Tm ({escaped}) Tj")
            y -= size * 1.6
        ops.append("ET")
        stream = DecodedStreamObject()
        stream.set_data("\n".join(ops).encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(stream)
        fonts = DictionaryObject({NameObject("/F1"): font_ref})
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
    if title:
        writer.add_metadata({"/Title": title})
    if password:
        writer.encrypt(password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


GUIDE = [
    [
        (20, "Operator guide"),
        (11, "This guide explains how to install"),
        (11, "and run the service on one machine."),
        (15, "Installing"),
        (11, "Run pip install factflow. The install-"),
        (11, "ation takes a minute."),
    ],
    [(15, "Running"), (11, "Start the server with factflow serve.")],
]
"""Two pages: a title, two sections, a paragraph over two lines and a hyphenated word."""
