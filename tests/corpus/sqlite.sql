-- hma_db hostile-schema corpus, SQLite source (issue 13, point 3).
-- Each block is one shape; tests/corpus_shapes.py lists the tables of each shape.
-- Rows come from a recursive CTE of row numbers. Loaded with sqlite3's executescript.

-- shape: foreign_type_names -- type names of other databases, which SQLAlchemy does not know
CREATE TABLE s_event (
    id          INTEGER PRIMARY KEY,
    happened_at TIMESTAMPTZ NOT NULL,
    logged_at   DATETIME2,
    amount      NUMBER(10,2) NOT NULL,
    label       VARCHAR2(30) NOT NULL,
    big_counter UNSIGNED BIG INT
);
INSERT INTO s_event
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 40)
SELECT i,
       strftime('%Y-%m-%d %H:%M:%S', '2022-02-01 08:00:00', '+' || (i * 17) || ' hours') || '+00:00',
       CASE WHEN i % 5 = 0 THEN NULL ELSE strftime('%Y-%m-%d %H:%M:%f', '2022-02-01', '+' || (i * 1013) || ' minutes') END,
       round(i * 12.34 + i % 7 * 0.05, 2),
       'label ' || (i % 6),
       9000000000000000000 + i * 1000
FROM seq;

-- shape: no_declared_type -- columns declared without a type
CREATE TABLE s_loose (
    id INTEGER PRIMARY KEY,
    anything,
    amount,
    created
);
INSERT INTO s_loose
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 30)
SELECT i, 'thing ' || (i % 4), i * 2.5, date('2023-01-01', '+' || i || ' days')
FROM seq;

-- shape: without_rowid -- a WITHOUT ROWID table with a text key, and a child
CREATE TABLE s_code (
    code  TEXT PRIMARY KEY,
    label TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO s_code
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 20)
SELECT 'K' || printf('%03d', i), 'code ' || i FROM seq;
CREATE TABLE s_usage (
    id    INTEGER PRIMARY KEY,
    code  TEXT NOT NULL REFERENCES s_code (code),
    count INTEGER NOT NULL
);
INSERT INTO s_usage
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 50)
SELECT i, 'K' || printf('%03d', 1 + i % 20), i * 3 % 41 FROM seq;

-- shape: strict -- a STRICT table with INT, REAL, TEXT, BLOB and ANY columns
CREATE TABLE s_strict (
    id    INT PRIMARY KEY,
    ratio REAL NOT NULL,
    name  TEXT NOT NULL,
    raw   BLOB,
    extra ANY
) STRICT;
INSERT INTO s_strict
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 30)
SELECT i, i / 7.0, 'name ' || (i % 5), CASE WHEN i % 4 = 0 THEN NULL ELSE CAST('bytes ' || i AS BLOB) END, CASE WHEN i % 2 = 0 THEN i ELSE 'v' || i END
FROM seq;
