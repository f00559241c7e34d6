"""MariaDB's own types cloned into MariaDB, PostgreSQL and SQLite: SET, BIT, UNSIGNED (BIGINT
UNSIGNED past int64 included), YEAR, TINYINT(1). Each load must succeed with every constraint
enforced; same dialect keeps the type, other dialects get a type that holds every value."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import query_frame

from hma_db import clone, reflect

pytestmark = pytest.mark.mysql

_MEMBERS = ["Trailers", "Commentaries", "Deleted Scenes", "Behind the Scenes"]
FILM_SQL = """CREATE TABLE film (
  id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  rating ENUM('G','PG','PG-13','R','NC-17') DEFAULT 'G',
  features SET('Trailers','Commentaries','Deleted Scenes','Behind the Scenes'),
  yr YEAR, flag BIT(1), bits BIT(8), active TINYINT(1) NOT NULL,
  stars TINYINT(1), small_u TINYINT UNSIGNED, med_u MEDIUMINT UNSIGNED, int_u INT UNSIGNED,
  big_u BIGINT UNSIGNED
) DEFAULT CHARSET=latin1"""
PLACES_SQL = """CREATE TABLE places (id INT AUTO_INCREMENT PRIMARY KEY, loc POINT NOT NULL,
  geom GEOMETRY, ls LINESTRING, pg POLYGON, mp MULTIPOINT, dbl_u DOUBLE UNSIGNED, ip6 INET6)"""


def _film_rows(n: int = 300) -> list[dict]:
    rows = []
    for i in range(n):
        members = [m for j, m in enumerate(_MEMBERS) if (i >> j) & 1]
        rows.append({"rating": ["G", "PG", "PG-13", "R", "NC-17"][i % 5],
                     "features": ",".join(members), "yr": 1990 + i % 30, "flag": i % 2,
                     "bits": i % 256, "active": i % 3 == 0, "stars": i % 6, "small_u": 200 + i % 56,
                     "med_u": 16_777_215 - i, "int_u": 4_294_967_295 - i * 7,
                     "big_u": 2**64 - 1 - i * 10**15})
    return rows


@pytest.fixture(scope="module")
def film_source(mysql_databases) -> str:
    url = mysql_databases.new("types_src")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(FILM_SQL)
        conn.execute(sa.text(
            "INSERT INTO film (rating, features, yr, flag, bits, active, stars, small_u, med_u, "
            "int_u, big_u) VALUES (:rating, :features, :yr, :flag, :bits, :active, :stars, "
            ":small_u, :med_u, :int_u, :big_u)"), _film_rows())
        conn.exec_driver_sql(PLACES_SQL)
        conn.exec_driver_sql(  # longitudes 2..3, latitudes 48..49 (and a line among the geoms)
            "INSERT INTO places (loc, geom, ls, pg, mp, dbl_u, ip6) SELECT ST_PointFromText(CONCAT("
            "'POINT(', 2 + seq / 200, ' ', 48 + seq / 200, ')')), IF(MOD(seq, 10) = 0, "
            "ST_GeomFromText('LINESTRING(2 48, 3 49)'), ST_PointFromText(CONCAT('POINT(', "
            "3 - seq / 200, ' ', 49 - seq / 200, ')'))), ST_GeomFromText('LINESTRING(2 48, 3 49)'), "
            "ST_GeomFromText('POLYGON((2 48, 3 48, 3 49, 2 48))'), "
            "ST_GeomFromText('MULTIPOINT(2 48, 3 49)'), seq / 7, '::1' FROM seq_0_to_199")
    engine.dispose()
    return url


def test_reflected_set_and_bit(film_source):
    columns = reflect(film_source).tables["film"]["columns"]
    assert columns["features"]["max_length"] == 54 and columns["features"]["nullable"]
    assert columns["features"]["generator"] == "set"  # all combinations rare: drawn as a SET
    assert columns["bits"]["generator"] == "bits" and columns["bits"]["max_length"] == 8
    assert columns["active"]["sdtype"] == "boolean"
    assert columns["stars"]["sdtype"] == "numerical"  # TINYINT(1) holding 0-5 is no flag


def _check_values(out: pd.DataFrame) -> None:
    assert len(out) == 300
    members = out["features"].dropna().str.split(",").explode()
    assert set(members) <= {*_MEMBERS, ""}
    assert pd.to_numeric(out["int_u"]).max() <= 4_294_967_295
    assert pd.to_numeric(out["int_u"]).min() >= 4_294_967_295 - 299 * 7
    assert pd.to_numeric(out["yr"]).between(1990, 2019).all()
    assert pd.to_numeric(out["stars"]).between(0, 5).all() and out["stars"].nunique() > 2


def test_clone_into_mariadb_keeps_the_types(film_source, mysql_databases):
    target = mysql_databases.new("types_my")
    clone(film_source, target, seed=5)  # crashed: unhashable type: 'set'
    out = query_frame(target, "SELECT features, yr, stars, int_u, CAST(big_u AS CHAR) AS big_u, "
                         "bits + 0 AS bits FROM film")
    _check_values(out)
    big = out["big_u"].map(int)
    assert big.min() >= 2**64 - 1 - 299 * 10**15 and big.max() <= 2**64 - 1  # past int64
    assert pd.to_numeric(out["bits"]).between(0, 255).all()
    flags = query_frame(target, "SELECT DISTINCT flag + 0 AS f FROM film")["f"]
    assert set(flags) == {0, 1}
    places = query_frame(target, "SELECT ST_X(loc) AS x, ST_Y(loc) AS y, ST_GeometryType(geom) AS g "
                            "FROM places")
    assert len(places) == 200 and places["x"].between(2, 3).all()
    assert places["y"].between(48, 49).all() and set(places["g"].dropna()) == {"POINT"}
    places_sql = query_frame(target, "SHOW CREATE TABLE places").iloc[0, 1].lower()
    assert "point not null" in places_sql and "double unsigned" in places_sql
    kinds = query_frame(target, "SELECT ST_GeometryType(ls) AS a, ST_GeometryType(pg) AS b, "
                           "ST_GeometryType(mp) AS c, ST_X(ST_StartPoint(ls)) AS x FROM places")
    assert set(map(tuple, kinds[["a", "b", "c"]].to_numpy())) == {
        ("LINESTRING", "POLYGON", "MULTIPOINT")}
    assert kinds["x"].between(2, 3).all()
    created = query_frame(target, "SHOW CREATE TABLE film").iloc[0, 1].lower()
    for kept in ("set('trailers'", "year", "int(10) unsigned", "bigint(20) unsigned", "bit(8)"):
        assert kept in created, kept


@pytest.mark.postgres
def test_clone_into_postgres_and_sqlite(film_source, postgres_databases, tmp_path):
    for target in (postgres_databases.new("types_pg"), f"sqlite:///{tmp_path / 'film.sqlite'}"):
        clone(film_source, target, seed=5)
        _check_values(query_frame(target, "SELECT * FROM film"))
        locs = query_frame(target, "SELECT loc FROM places")["loc"]  # WKT text, never random words
        coords = locs.str.extract(r"^POINT\(([-\d.]+) ([-\d.]+)\)$").astype(float)
        assert coords[0].between(2, 3).all() and coords[1].between(48, 49).all()
    longest = query_frame(target, "SELECT max(length(features)) AS n FROM film")["n"].iloc[0]
    assert longest > len("Behind the Scenes")  # a combination, wider than any one member
