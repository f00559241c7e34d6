-- hma_db hostile-schema corpus, MariaDB source (issue 13, point 3).
-- Each block is one shape; tests/corpus_shapes.py lists the tables of each shape.
-- Rows come from a recursive CTE (seq) of row numbers, so the data is the same on every
-- load. The test splits this file on semicolons outside quotes and runs each statement.

-- shape: enum
CREATE TABLE m_ticket (
    id       INT PRIMARY KEY,
    priority ENUM('low', 'medium', 'high', 'critical') NOT NULL,
    status   ENUM('open', 'closed') NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO m_ticket
WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 40)
SELECT i, ELT(1 + i % 4, 'low', 'medium', 'high', 'critical'), IF(i % 5 = 0, NULL, ELT(1 + i % 2, 'open', 'closed'))
FROM seq;

-- shape: set -- SET columns holding combinations of members
CREATE TABLE m_film (
    id               INT PRIMARY KEY,
    title            VARCHAR(60) NOT NULL,
    special_features SET('Trailers', 'Commentaries', 'Deleted Scenes', 'Behind the Scenes') NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO m_film
WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 40)
SELECT i, CONCAT('Film ', i), IF(i % 9 = 0, NULL, i % 16)
FROM seq;

-- shape: year
CREATE TABLE m_vintage (
    id       INT PRIMARY KEY,
    harvest  YEAR NOT NULL,
    bottled  YEAR NULL
) ENGINE=InnoDB;
INSERT INTO m_vintage
WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 30)
SELECT i, 1990 + i, IF(i % 4 = 0, NULL, 1992 + i)
FROM seq;

-- shape: bit -- BIT(1) and BIT(8)
CREATE TABLE m_switch (
    id      INT PRIMARY KEY,
    enabled BIT(1) NOT NULL,
    mask    BIT(8) NULL
) ENGINE=InnoDB;
INSERT INTO m_switch
WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 30)
SELECT i, i % 2, IF(i % 6 = 0, NULL, i * 37 % 256)
FROM seq;

-- shape: json
CREATE TABLE m_config (
    id       INT PRIMARY KEY,
    settings JSON NOT NULL,
    extra    JSON NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO m_config
WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 30)
SELECT i, JSON_OBJECT('theme', ELT(1 + i % 3, 'dark', 'light', 'auto'), 'size', i % 7, 'beta', i % 2 = 0),
       IF(i % 3 = 0, NULL, JSON_ARRAY(i, i * 2))
FROM seq;

-- shape: tinyint1 -- TINYINT(1) used as a boolean
CREATE TABLE m_member (
    id        INT PRIMARY KEY,
    is_admin  TINYINT(1) NOT NULL DEFAULT 0,
    verified  TINYINT(1) NULL
) ENGINE=InnoDB;
INSERT INTO m_member
WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 30)
SELECT i, i % 5 = 0, IF(i % 7 = 0, NULL, i % 2)
FROM seq;

-- shape: unsigned -- UNSIGNED integers with values near their maximum
CREATE TABLE m_counter (
    id      INT UNSIGNED PRIMARY KEY,
    small   TINYINT UNSIGNED NOT NULL,
    medium  INT UNSIGNED NOT NULL,
    big     BIGINT UNSIGNED NOT NULL
) ENGINE=InnoDB;
INSERT INTO m_counter
WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 30)
SELECT 4294967295 - i, 255 - i % 20, 4294967295 - i * 1000, 18446744073709551615 - i * 1000000
FROM seq;

-- shape: auto_increment -- AUTO_INCREMENT keys, a child table referencing one
CREATE TABLE m_author (
    id   INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(40) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO m_author (name)
WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 15)
SELECT CONCAT('Author ', i) FROM seq;
CREATE TABLE m_book (
    id        BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    author_id INT NOT NULL,
    pages     SMALLINT NOT NULL,
    CONSTRAINT m_book_author FOREIGN KEY (author_id) REFERENCES m_author (id)
) ENGINE=InnoDB;
INSERT INTO m_book (author_id, pages)
WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 45)
SELECT 1 + i % 15, 80 + i * 17 % 600 FROM seq;

-- shape: geometry -- POINT and GEOMETRY columns
CREATE TABLE m_place (
    id       INT PRIMARY KEY,
    location POINT NOT NULL,
    area     GEOMETRY NULL
) ENGINE=InnoDB;
INSERT INTO m_place
WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 30)
SELECT i, POINT(2.3 + i / 100, 48.8 + i / 200),
       IF(i % 3 = 0, NULL, ST_GeomFromText(CONCAT('POINT(', 2 + i % 5, ' ', 48 + i % 3, ')')))
FROM seq;

-- shape: blob -- BLOB and MEDIUMBLOB
CREATE TABLE m_attachment (
    id      INT PRIMARY KEY,
    name    VARCHAR(40) NOT NULL,
    thumb   BLOB NOT NULL,
    payload MEDIUMBLOB NULL
) ENGINE=InnoDB;
INSERT INTO m_attachment
WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 30)
SELECT i, CONCAT('file', i, '.png'), UNHEX(REPEAT(MD5(i), 1 + i % 3)), IF(i % 4 = 0, NULL, UNHEX(SHA2(i, 256)))
FROM seq;

-- shape: latin1 -- a latin1 table with accented text
CREATE TABLE m_client_latin1 (
    id    INT PRIMARY KEY,
    city  VARCHAR(30) NOT NULL,
    note  VARCHAR(60) NULL
) ENGINE=InnoDB DEFAULT CHARSET=latin1;
INSERT INTO m_client_latin1
WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 30)
SELECT i, ELT(1 + i % 5, 'Besançon', 'Köln', 'Málaga', 'Zürich', 'Ørsted'),
       IF(i % 3 = 0, NULL, CONCAT('Façade n° ', i, ' déjà vu'))
FROM seq;
