"""Grants keep the level of assurance a provider proved (issue 16); rows stored before
have an empty level, read as "whatever the methods prove"."""

from django.db import migrations, models


class Migration(migrations.Migration):  # type: ignore[misc]
    dependencies = [("stepup", "0003_passkeyrecord")]

    operations = [
        migrations.AddField(
            model_name="grantrecord",
            name="level",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
    ]
