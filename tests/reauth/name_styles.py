"""The ways a form writes a field's words (snake, camel, bracketed ...), for the tests
that hold `stepup.resume.is_secret_field` to reading a name however it is written."""

from __future__ import annotations

from collections.abc import Callable

Style = Callable[[list[str]], str]

#: Each style joins lower-case words into one field name.
STYLES: dict[str, Style] = {
    "snake": "_".join,
    "kebab": "-".join,
    "dotted": ".".join,
    "spaced": " ".join,
    "upper_snake": lambda w: "_".join(w).upper(),
    "camel": lambda w: w[0] + "".join(x[:1].upper() + x[1:] for x in w[1:]),
    "pascal": lambda w: "".join(x[:1].upper() + x[1:] for x in w),
    "bracketed": lambda w: f"user[{'_'.join(w)}]",
    "nested_bracketed": lambda w: f"form[user][{'-'.join(w)}]",
}
