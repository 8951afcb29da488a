"""The activity projection upserts thousands of rows per batch. Two changes make each
upsert cheaper: drop the `text_pattern_ops` ("_like") indexes Django adds to text primary
keys (nothing queries these keys with LIKE) and leave 20 % free space per page so
counter updates can be HOT (no index insert per update)."""

from django.db import migrations

_TABLES = {
    "behaviour_user_activity": "behaviour_user_activity_user_key_233083e5_like",
    "behaviour_product_activity": "behaviour_product_activity_product_id_87017858_like",
}


class Migration(migrations.Migration):
    dependencies = [("behaviour", "0001_initial")]

    operations = [
        migrations.RunSQL(
            sql=[f"DROP INDEX IF EXISTS {index}" for index in _TABLES.values()]
            + [f"ALTER TABLE {table} SET (fillfactor = 80)" for table in _TABLES],
            reverse_sql=[f"ALTER TABLE {table} RESET (fillfactor)" for table in _TABLES],
        )
    ]
