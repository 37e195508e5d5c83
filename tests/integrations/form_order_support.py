"""Forms with repeated names, interleaved, as raw bodies (urlencoded and multipart), for
the tests that a kept form comes back in the order it was sent."""

from __future__ import annotations

from urllib.parse import urlencode

from hypothesis import strategies as st

BOUNDARY = "stepup-order-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
URLENCODED = "application/x-www-form-urlencoded"

#: Fields with a few names, so names repeat and interleave; values without the boundary.
fields = st.lists(
    st.tuples(
        st.sampled_from(["item", "qty", "note", "tag"]),
        st.text(st.characters(categories=["L", "N", "Zs"], include_characters="<&>"), max_size=8),
    ),
    min_size=1,
    max_size=8,
)


def body(pairs: list[tuple[str, str]], content_type: str) -> bytes:
    """``pairs`` as a request body of ``content_type`` (URLENCODED or MULTIPART)."""
    if content_type == URLENCODED:
        return urlencode(pairs).encode()
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in pairs
    ]
    return ("".join(parts) + f"--{BOUNDARY}--\r\n").encode()
