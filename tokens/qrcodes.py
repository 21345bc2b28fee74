"""A freshly minted activation token as a QR code, drawn here (segno, no external service) as an
inline SVG: the token never leaves the page, and the SVG carries presentation attributes only
(no style attribute, no script), which the portal's CSP allows."""

import io

import segno
from django.utils.safestring import SafeString, mark_safe


def token_qr_svg(raw: str) -> SafeString:
    """The token as an SVG QR code (error correction M, about 150 px square)."""
    code = segno.make(raw, error="m", micro=False)
    out = io.BytesIO()
    code.save(
        out,
        kind="svg",
        xmldecl=False,
        svgns=True,
        nl=False,
        scale=4,
        border=4,
        title="QR code of the activation token",
        svgid="activation-token-qr",
        svgclass="token-qr-code",
        lineclass=None,
    )
    # segno writes only its path data and the fixed title above: nothing from a user.
    return mark_safe(out.getvalue().decode())  # noqa: S308
