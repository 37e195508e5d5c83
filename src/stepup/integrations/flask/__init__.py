"""Flask integration: an extension with ``init_app``, a decorator, and ready-made views.

::

    stepup = Stepup(app)

    @app.post("/api-key/regenerate")
    @stepup.reauth_required("api_key.regenerate")
    def regenerate_api_key(): ...

See ``docs/getting-started-flask.md``.
"""

from ..._extras import needs_extra

with needs_extra(__name__, "flask"):
    from ._csrf import CsrfTokens
    from ._extension import Stepup
    from ._hooks import Hooks
    from ._state import AppState

__all__ = ["AppState", "CsrfTokens", "Hooks", "Stepup"]
