"""A link drawn as a button (Continue, Try again, Done) reads as one: white text on the
button's blue, its text in the middle. ``.stepup-card a`` made it blue on blue."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import pytest

pytestmark = pytest.mark.browser


def test_a_button_link_is_white_on_blue_with_its_text_in_the_middle(browser: Any) -> None:
    css = files("stepup.integrations").joinpath("static/stepup.css").read_text()
    page = browser.new_page()
    try:
        page.set_content(
            f"<style>{css}</style><main class='stepup-card'>"
            "<p><a class='stepup-button' href='/next'>Continue</a></p>"
            "<button>Confirm</button></main>"
        )
        link, button = page.locator("a.stepup-button"), page.locator("button")
        style = "el => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]"
        color, background = link.evaluate(style)
        assert color == "rgb(255, 255, 255)"
        assert (color, background) == tuple(button.evaluate(style))  # as a real button
        box = link.bounding_box()
        text = link.evaluate(
            "el => { const r = document.createRange(); r.selectNodeContents(el);"
            " const b = r.getBoundingClientRect(); return [b.top, b.bottom]; }"
        )
        above, below = text[0] - box["y"], box["y"] + box["height"] - text[1]
        assert abs(above - below) <= 2  # the text sits in the middle
    finally:
        page.close()
