import sqlalchemy as sa


def test_postgres_scripts_load(chinook_postgres, northwind_postgres):
    for url, table, rows in ((chinook_postgres, "invoice_line", 2240),
                             (northwind_postgres, "order_details", 2155)):
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() == rows
        engine.dispose()


def test_mysql_database(mysql_databases):
    engine = sa.create_engine(mysql_databases.new("smoke"))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    engine.dispose()
