"""Credentials keep several TOTP devices (issue 15), as JSON in one column. A row stored
before has it empty and is read as one device made of its own columns (secret, digits,
period, algorithm, confirmed, created_at; the credential id is the device id), so no
data moves: the next write of the credential stores it with its devices."""

from django.db import migrations, models


class Migration(migrations.Migration):  # type: ignore[misc]
    dependencies = [("stepup", "0004_grantrecord_level")]

    operations = [
        migrations.AddField(
            model_name="credentialrecord",
            name="devices",
            field=models.TextField(blank=True, default=""),
        ),
    ]
