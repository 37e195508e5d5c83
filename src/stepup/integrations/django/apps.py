"""The app config: registers the system checks and follows Django's sign-in signals,
the user model's password changes and its deletions."""

from __future__ import annotations

import logging
from contextlib import suppress
from typing import Any

from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db.models.signals import post_delete, post_save

__all__ = ["StepupConfig"]

logger = logging.getLogger("stepup.integrations.django")


class StepupConfig(AppConfig):  # type: ignore[misc]
    name = "stepup.integrations.django"
    label = "stepup"
    verbose_name = "Step-up authentication"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ._request import answer_outages_with
        from .checks import check_settings
        from .services import settings_changed
        from .views import outage_page

        checks.register(check_settings, "stepup")
        answer_outages_with(outage_page)  # a browser reads a page when the store is down
        setting_changed.connect(settings_changed, dispatch_uid="stepup.settings_changed")
        user_logged_in.connect(_logged_in, dispatch_uid="stepup.user_logged_in")
        user_logged_out.connect(_logged_out, dispatch_uid="stepup.user_logged_out")
        _follow_password_changes()
        _follow_user_deletions()


def _follow_password_changes() -> None:
    """Revoke a user's grants whenever a new password is saved (``_password_saved``).
    Connected for every sender: Django sends ``post_save`` with the class saved, so a
    proxy or a multi-table subclass of ``AUTH_USER_MODEL`` is filtered in the receiver."""
    post_save.connect(_password_saved, dispatch_uid="stepup.password_saved")


def _is_user_model(sender: Any) -> bool:
    """The project's user model, a proxy or a subclass of it; never a migration's
    historical model (another class) nor any model when there is no user model."""
    from django.contrib.auth import get_user_model

    try:
        user_model = get_user_model()
    except (ImproperlyConfigured, LookupError):  # no user model: nothing to follow
        return False
    return isinstance(sender, type) and issubclass(sender, user_model)


def _password_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """A user saved with a new password (``set_password()`` then ``save()``: Django's
    ``PasswordChangeView``, ``SetPasswordForm``, ``changepassword``, the admin; also
    through a proxy or a subclass of the user model) has every grant revoked, in every
    session (OWASP ASVS 5.0 section 7.4.3), as ``request.stepup.password_changed`` does.
    Django's ``AbstractBaseUser`` keeps the new password in ``_password`` until its
    ``save()`` returns (a hash upgraded at sign-in is not kept there: no change). A new
    user has no grant: the store is not asked; nor on a raw save (fixtures).

    Inside a transaction (``ATOMIC_REQUESTS``, ``atomic()``) the grants are revoked at
    once and again when it commits: until then other workers check the old password,
    still the committed one, and a re-authentication they record must not outlive the
    change. The first revocation holds even if the second never runs (a worker killed
    between the commit and its callbacks); a rolled-back change only costs a
    re-authentication. A store outage never stops the save: nothing is revoked (the
    grants end at their lifetime; the outage is logged)."""
    if created or kwargs.get("raw") or getattr(instance, "_password", None) is None:
        return
    if not _is_user_model(sender):
        return
    from django.db import transaction

    user_id = str(instance.pk)
    _revoke_for_password_change(user_id)
    using = kwargs.get("using")
    if transaction.get_connection(using).in_atomic_block:
        transaction.on_commit(lambda: _revoke_for_password_change(user_id), using=using)


def _revoke_for_password_change(user_id: str) -> None:
    """Revoke every grant of ``user_id``; a store outage is logged by the store, never
    raised (the password change committed), nor an id the store refuses."""
    from ...errors import MalformedInputError, StoreUnavailableError
    from .services import get_stepup

    with suppress(StoreUnavailableError, MalformedInputError):
        get_stepup().reauth.password_changed(user_id)


def _follow_user_deletions() -> None:
    """Forget a deleted user's stepup data (``_user_deleted``). Connected for the user
    model and its proxies only (``post_delete`` is sent with the class deleted; a
    multi-table subclass's deletion also sends it for the user model's row): a receiver
    for every sender would cost every ``QuerySet.delete()`` of the project Django's fast
    delete, each row fetched to be signalled."""
    from django.apps import apps
    from django.contrib.auth import get_user_model

    try:
        user_model = get_user_model()
    except (ImproperlyConfigured, LookupError):  # no user model: nothing to follow
        return
    concrete = user_model._meta.concrete_model
    for model in apps.get_models():
        if issubclass(model, user_model) and model._meta.concrete_model is concrete:
            post_delete.connect(_user_deleted, sender=model, dispatch_uid="stepup.user_deleted")


def _user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A deleted user's stepup data goes with them, once the deletion commits: their
    TOTP credential (every device, the sealed secrets, the recovery-code digests),
    their passkeys and their grants in every session. Kept, they would belong to
    whoever is given the same primary key next (a database that reuses keys, a user
    re-created from a fixture). A deletion rolled back removes nothing; a subclass row
    deleted with ``keep_parents=True`` leaves the user, and is not followed. A store
    outage never stops the commit: what was not removed is logged, with the operator
    command that removes it."""
    from django.db import transaction

    user_id = str(instance.pk)
    transaction.on_commit(lambda: _forget_user(user_id), using=kwargs.get("using"))


def _forget_user(user_id: str) -> None:
    """Remove ``user_id``'s grants, TOTP credential and passkeys through the store. It
    runs after the deletion committed, so nothing it meets is raised: the user is gone
    whatever it says, and an error would only stop the project's later commit hooks."""
    from ...errors import StepupError, StoreUnavailableError
    from .services import get_stepup

    store = get_stepup().store
    try:
        store.revoke_grants(user_id)
        store.delete_credential(user_id)
        for passkey in store.list_passkeys(user_id):
            store.remove_passkey(user_id, passkey.credential_id)
    except StoreUnavailableError:
        logger.warning(
            "the two-factor data of deleted user %r was not all removed (the store is"
            " unavailable); remove it with: manage.py stepup_operator remove-2fa %s",
            user_id,
            user_id,
        )
    except StepupError as exc:  # an id the store refuses: it can hold nothing for it
        logger.warning(
            "the two-factor data of deleted user %r was not removed: %s",
            user_id,
            type(exc).__name__,
        )


def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """A new stepup session id at every sign-in: no earlier grant carries over. A
    sign-in that skipped stepup's second step is held for it (``_request.hold_sign_in``)."""
    session = getattr(request, "session", None)
    if session is not None:
        from ..views import note_sign_in
        from ._request import hold_sign_in

        note_sign_in(session, None)
        hold_sign_in(request, user)


def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """Signing out revokes this session's grant and spends the sign-in it had waiting
    for its second factor (nobody is signed in then: ``user`` is ``None``)."""
    session = getattr(request, "session", None)
    if session is None:
        return
    from ...errors import StoreUnavailableError
    from ...subject import Subject
    from ..views import SESSION_ID
    from . import _session
    from .services import get_stepup

    if _session.PENDING in session and not getattr(request, _session.KEEPS_WAITING, False):
        # Django's flush that follows leaves a copy of a signed-cookie session able to
        # finish it: spent in the store.
        _session.drop_waiting_sign_in(session, get_stepup())
    if user is None:
        return
    sid = session.get(SESSION_ID)
    _session.forget(session)
    if isinstance(sid, str):
        # Django ends the session after this signal: a store outage must not stop it
        # (nothing is revoked then; the grant ends at its lifetime, the outage is logged).
        with suppress(StoreUnavailableError):
            get_stepup().reauth.sign_out(Subject(str(user.pk), sid))
