"""Stamp tokens now carry the time of their move (``stamp_clock``).

The random tokens of 0.1 would read as random dates: replace every one with a
token dated now by the database's clock. Like any move, this makes every kept
validator recompute once.
"""

from typing import Any

from django.db import migrations


def date_every_token(apps: Any, schema_editor: Any) -> None:
    from django_conditional.stamps import new_token, token_sql

    connection = schema_editor.connection
    table = connection.ops.quote_name("django_conditional_changestamp")
    token = connection.ops.quote_name("token")
    with connection.cursor() as cursor:
        if connection.vendor in {"postgresql", "mysql", "sqlite"}:
            cursor.execute(f"UPDATE {table} SET {token} = {token_sql(connection.vendor)}")
            return
        ChangeStamp = apps.get_model("django_conditional", "ChangeStamp")
        for stamp in ChangeStamp.objects.using(connection.alias).only("table"):
            ChangeStamp.objects.using(connection.alias).filter(table=stamp.table).update(
                token=new_token()
            )


class Migration(migrations.Migration):
    dependencies = [("django_conditional", "0001_initial")]

    operations = [migrations.RunPython(date_every_token, migrations.RunPython.noop, elidable=True)]
