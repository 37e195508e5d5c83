"""Sphinx configuration for stepup's API reference, built from the docstrings.

Build: ``.venv/bin/sphinx-build -W -b html docs/api build/api`` (CI: scripts/test.sh,
warnings are errors). The guides are the Markdown pages in ``docs/``; this is the reference.
"""

from __future__ import annotations

import stepup

project = "stepup"
author = "stepup maintainers"
copyright = "stepup maintainers"  # noqa: A001 - the name Sphinx reads
release = version = stepup.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
exclude_patterns = ["_build"]
html_theme = "alabaster"
# Cross-references to names Sphinx cannot resolve are not errors (nitpicky is off); what
# fails the build is a malformed docstring, a module that does not import, or a duplicate.
suppress_warnings: list[str] = []


def _django() -> None:
    """The Django integration's modules import models: configure a settings-free Django."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            INSTALLED_APPS=[
                "django.contrib.auth",
                "django.contrib.contenttypes",
                "django.contrib.sessions",
                "stepup.integrations.django",
            ],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            SECRET_KEY="sphinx-build-only",  # noqa: S105 - never serves a request
            USE_TZ=True,
        )
        django.setup()


_django()
