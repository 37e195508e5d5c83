"""Passkeys: one row per registered WebAuthn credential (a new table; nothing existing
changes)."""

from django.db import migrations, models


class Migration(migrations.Migration):  # type: ignore[misc]
    dependencies = [("stepup", "0002_credentialrecord_version")]

    operations = [
        migrations.CreateModel(
            name="PasskeyRecord",
            fields=[
                ("key", models.CharField(max_length=255, primary_key=True, serialize=False)),
                ("credential_id", models.TextField()),
                ("user_id", models.CharField(db_index=True, max_length=255)),
                ("credential_data", models.TextField()),
                ("name", models.TextField()),
                ("sign_count", models.PositiveBigIntegerField(default=0)),
                ("backup_eligible", models.BooleanField(default=False)),
                ("backup_state", models.BooleanField(default=False)),
                ("user_verified", models.BooleanField(default=False)),
                ("created_at", models.FloatField(default=0.0)),
                ("last_used_at", models.FloatField(blank=True, null=True)),
                ("transports", models.JSONField(default=list)),
            ],
            options={
                "verbose_name": "passkey",
            },
        ),
    ]
