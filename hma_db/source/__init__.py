"""The source stage: reflect a database and read its rows. The only user of the inspector.

Takes in a URL or engine (only ever read, in read-only transactions where the server allows);
gives out :class:`~hma_db.schema.Metadata` with the physical schema and row counts
(:func:`reflect`), and ``{table: DataFrame}`` of the whole tables or of a referentially closed
subset (:func:`read_tables`, :func:`read_subset`), streamed in chunks (COPY TO on PostgreSQL);
the source's own DDL of the chosen tables for a same-dialect target (:func:`schema_dump`).
"""

from hma_db.source.dump import DumpStatement, SchemaDump, schema_dump
from hma_db.source.ranges import read_range, read_tables_in_ranges
from hma_db.source.read import begin_read_only, read_tables, table_selectable
from hma_db.source.reflect import reflect
from hma_db.source.subset import check_max_rows, read_subset

__all__ = [
    "DumpStatement",
    "SchemaDump",
    "begin_read_only",
    "check_max_rows",
    "read_range",
    "read_subset",
    "read_tables",
    "read_tables_in_ranges",
    "reflect",
    "schema_dump",
    "table_selectable",
]
