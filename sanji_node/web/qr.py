"""QR codes as inline SVG (segno: pure Python, no image library), for the 收件凭证 and enrolment sheets."""

from __future__ import annotations

import io

import segno


def svg(text: str, *, scale: int = 4) -> str:
    """An <svg> element (no XML declaration) encoding `text`, error correction M, with a quiet zone."""
    out = io.BytesIO()
    segno.make(text, error="m", micro=False).save(
        out, kind="svg", scale=scale, border=2, xmldecl=False, svgns=True, nl=False
    )
    return out.getvalue().decode("utf-8")
