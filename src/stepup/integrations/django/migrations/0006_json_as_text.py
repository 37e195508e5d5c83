"""Tenant attributes, challenge data and passkey transports become JSON text, as the
SQL store keeps them: PostgreSQL's ``jsonb`` refused NUL and lone surrogates and
rewrote numbers (``1e16`` read back as an int, ``-0.0`` as ``0.0``).

Forward, each column changes type (PostgreSQL casts every ``jsonb`` value to its JSON
text; SQLite already kept JSON text) and every row is then rewritten as the compact
ASCII JSON the store writes. Backward, every row is checked first: on PostgreSQL a
value ``jsonb`` cannot hold (text with NUL or a lone surrogate) stops the migration,
naming the table and how many rows, before anything changes; the column then changes
back (PostgreSQL casts the text to ``jsonb``; SQLite keeps it as it is)."""

from __future__ import annotations

import json
from typing import Any

from django.db import migrations, models

#: model name -> the field that holds JSON.
_DOCUMENTS = {
    "tenantrecord": "attributes",
    "challengerecord": "data",
    "passkeyrecord": "transports",
}


def _rows(apps: Any, schema_editor: Any, model_name: str) -> tuple[Any, str, Any]:
    model = apps.get_model("stepup", model_name)
    field = _DOCUMENTS[model_name]
    objects = model._default_manager.using(schema_editor.connection.alias)
    return objects, field, objects.values_list("pk", field).order_by("pk")


def _to_compact_text(apps: Any, schema_editor: Any) -> None:
    for model_name in _DOCUMENTS:
        objects, field, rows = _rows(apps, schema_editor, model_name)
        changed = [(pk, text, _compact(text)) for pk, text in rows.iterator()]
        for pk, text, compact in changed:  # read first: no update under an open cursor
            if compact != text:
                objects.filter(pk=pk).update(**{field: compact})


def _compact(text: str) -> str:
    """The JSON text the store writes for the value ``text`` holds."""
    value = json.loads(text)
    return json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def _jsonb_holds(value: Any) -> bool:
    """Can PostgreSQL's ``jsonb`` hold ``value``: no NUL and no lone surrogate (not
    UTF-8) in any of its text, names included?"""
    if isinstance(value, str):
        return "\x00" not in value and _is_utf8(value)
    if isinstance(value, dict):
        return all(_jsonb_holds(k) and _jsonb_holds(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_jsonb_holds(item) for item in value)
    return True


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_jsonb_holds_every_row(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite's JSONField kept JSON text: every row goes back as it is
    for model_name in _DOCUMENTS:
        _, _, rows = _rows(apps, schema_editor, model_name)
        refused = sum(not _jsonb_holds(json.loads(text)) for _, text in rows.iterator())
        if refused:
            table = apps.get_model("stepup", model_name)._meta.db_table
            raise RuntimeError(
                f"cannot migrate {table} back to jsonb: {refused} row(s) hold text jsonb"
                " refuses (NUL or a lone surrogate); change or delete them first"
            )


class Migration(migrations.Migration):  # type: ignore[misc]
    dependencies = [("stepup", "0005_credentialrecord_devices")]

    operations = [
        migrations.AlterField(
            model_name="tenantrecord",
            name="attributes",
            field=models.TextField(default="{}"),
        ),
        migrations.AlterField(
            model_name="challengerecord",
            name="data",
            field=models.TextField(default="{}"),
        ),
        migrations.AlterField(
            model_name="passkeyrecord",
            name="transports",
            field=models.TextField(default="[]"),
        ),
        migrations.RunPython(_to_compact_text, _check_jsonb_holds_every_row),
    ]
