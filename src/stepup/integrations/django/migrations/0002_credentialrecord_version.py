"""Credentials get a version (every write adds one; reseal compares and sets it).
Credentials stored before start at 0."""

from django.db import migrations, models


class Migration(migrations.Migration):  # type: ignore[misc]
    dependencies = [("stepup", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="credentialrecord",
            name="version",
            field=models.PositiveBigIntegerField(default=0),
        ),
    ]
