"""What the ORM store keeps, as Django models (so it lives in the project's database,
with its migrations). Use :class:`~.store.DjangoStore`, not these models, to change it:
the store is what makes each operation atomic.

Keys and ids are at most 255 characters; the store hashes longer ones into that room
(and answers with the ids it was asked about, so callers never see the hashes).

Documents (a tenant's attributes, a challenge's data, a passkey's transports) are JSON
text, as the SQL store keeps them, not ``JSONField``: PostgreSQL's ``jsonb`` refuses
NUL and lone surrogates and rewrites numbers (``1e16`` reads back as an int, ``-0.0``
as ``0.0``), so the same record would read back differently on another store.
"""

from __future__ import annotations

from django.db import models

__all__ = [
    "AttemptState",
    "ChallengeRecord",
    "CredentialRecord",
    "GrantRecord",
    "PasskeyRecord",
    "RecoveryHash",
    "TenantRecord",
]

ID_LENGTH = 255


class AttemptState(models.Model):  # type: ignore[misc]
    """Replay ledger and throttle state of one key (a credential, a user's password)."""

    key = models.CharField(primary_key=True, max_length=ID_LENGTH)
    failures = models.IntegerField(default=0)
    blocked_until = models.FloatField(default=0.0)
    # BIGINT: 8-digit, 1-second codes and far-future clocks overflow 32 bits.
    last_step = models.BigIntegerField(null=True, blank=True)
    expires_at = models.FloatField(db_index=True)

    class Meta:
        verbose_name = "attempt state"

    def __str__(self) -> str:
        return str(self.key)


class CredentialRecord(models.Model):  # type: ignore[misc]
    """A user's TOTP credential; ``secret`` is sealed (see ``ENCRYPTION_KEYS``)."""

    user_id = models.CharField(primary_key=True, max_length=ID_LENGTH)
    credential_id = models.CharField(max_length=ID_LENGTH)
    secret = models.TextField()
    digits = models.PositiveSmallIntegerField(default=6)
    period = models.PositiveIntegerField(default=30)
    algorithm = models.CharField(max_length=16, default="SHA1")
    confirmed = models.BooleanField(default=False)
    created_at = models.FloatField(default=0.0)
    # Every write adds one (see Credential.version): reseal's compare-and-set.
    version = models.PositiveBigIntegerField(default=0)
    # The user's TOTP devices as JSON (each secret sealed); empty for a credential
    # stored before 0005, which is one device made of the columns above.
    devices = models.TextField(blank=True, default="")

    class Meta:
        verbose_name = "two-factor credential"

    def __str__(self) -> str:
        return str(self.credential_id)


class RecoveryHash(models.Model):  # type: ignore[misc]
    """One unused recovery code, as a digest; using it deletes the row."""

    credential = models.ForeignKey(
        CredentialRecord, on_delete=models.CASCADE, related_name="recovery_hashes"
    )
    position = models.PositiveSmallIntegerField()
    digest = models.CharField(max_length=128, db_index=True)

    class Meta:
        verbose_name = "recovery code digest"
        constraints = [
            models.UniqueConstraint(
                fields=["credential", "position"], name="stepup_recovery_position"
            )
        ]

    def __str__(self) -> str:
        return f"{self.credential_id}#{self.position}"


class TenantRecord(models.Model):  # type: ignore[misc]
    """A tenant's JSON:API attributes, ``feature_flags`` among them."""

    tenant_id = models.CharField(primary_key=True, max_length=ID_LENGTH)
    attributes = models.TextField(default="{}")  # JSON text (see the module's docstring)

    class Meta:
        verbose_name = "tenant settings"
        verbose_name_plural = "tenant settings"

    def __str__(self) -> str:
        return str(self.tenant_id)


class GrantRecord(models.Model):  # type: ignore[misc]
    """A successful re-authentication of one user in one session."""

    user_id = models.CharField(max_length=ID_LENGTH)
    session_id = models.CharField(max_length=ID_LENGTH)
    methods = models.CharField(max_length=64)  # amr-style names, sorted, comma-separated
    level = models.CharField(max_length=64, blank=True, default="")  # "": from the methods
    authenticated_at = models.FloatField()
    expires_at = models.FloatField(db_index=True)

    class Meta:
        verbose_name = "re-authentication grant"
        constraints = [
            models.UniqueConstraint(fields=["user_id", "session_id"], name="stepup_grant_session")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} ({self.methods})"


class ChallengeRecord(models.Model):  # type: ignore[misc]
    """A pending federated re-authentication (OIDC state or SAML request id)."""

    challenge_id = models.CharField(primary_key=True, max_length=ID_LENGTH)
    user_id = models.TextField()
    session_id = models.TextField()
    issued_at = models.FloatField()
    expires_at = models.FloatField(db_index=True)
    data = models.TextField(default="{}")  # JSON text

    class Meta:
        verbose_name = "federated re-authentication challenge"

    def __str__(self) -> str:
        return str(self.challenge_id)


class PasskeyRecord(models.Model):  # type: ignore[misc]
    """One registered passkey (WebAuthn credential) of a user. The primary key is the
    credential id (hashed if longer than 255 characters), so an id is registered to
    one user only; ``credential_id`` keeps it whole."""

    key = models.CharField(primary_key=True, max_length=ID_LENGTH)
    credential_id = models.TextField()
    user_id = models.CharField(max_length=ID_LENGTH, db_index=True)
    credential_data = models.TextField()  # the public key (COSE, base64url): not a secret
    name = models.TextField()
    sign_count = models.PositiveBigIntegerField(default=0)
    backup_eligible = models.BooleanField(default=False)
    backup_state = models.BooleanField(default=False)
    user_verified = models.BooleanField(default=False)
    created_at = models.FloatField(default=0.0)
    last_used_at = models.FloatField(null=True, blank=True)
    transports = models.TextField(default="[]")  # JSON text: a list of names

    class Meta:
        verbose_name = "passkey"

    def __str__(self) -> str:
        return f"{self.user_id}: {self.name}"
