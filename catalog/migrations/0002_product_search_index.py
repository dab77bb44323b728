"""Add the GIN index that PostgreSQL's full-text product search uses.

The index is built on the same expression as `catalog.selectors.product_search_vector` (copied
here so that this migration never changes); a test checks that the planner uses it. Other
databases have no GIN indexes: there the operation does nothing and search falls back to LIKE.
"""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations

INDEX_NAME = "product_search_gin"


def _index() -> GinIndex:
    vector = (
        SearchVector("name", weight="A", config="english")
        + SearchVector("brand", weight="B", config="english")
        + SearchVector("description", weight="C", config="english")
    )
    return GinIndex(vector, name=INDEX_NAME)


def create_index(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.add_index(apps.get_model("catalog", "Product"), _index())


def drop_index(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.remove_index(apps.get_model("catalog", "Product"), _index())


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = [migrations.RunPython(create_index, drop_index, elidable=False)]
