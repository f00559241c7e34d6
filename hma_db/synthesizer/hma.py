"""``HMASynthesizer``: SDV's multi-table API over hma_db's vectorized hierarchical model.

Code written for SDV's ``HMASynthesizer`` runs with only its imports changed::

    from hma_db import HMASynthesizer, load_synthesizer

The synthesizer glues three stages: per table a :class:`~hma_db.transform.table.TableTransformer`
turns columns into numbers, :func:`~hma_db.model.hierarchy.fit_hma` learns the tables and their
relationships from those numbers and the *links* (each child row's parent row position, see
:mod:`hma_db.synthesizer.links`), and sampling runs the same way back, generating primary keys and
filling foreign keys from the sampled links so that every reference is valid.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from hma_db._version import __version__
from hma_db.errors import (
    DataError,
    HmaDbError,
    ModelFileError,
    NotFittedError,
    SynthesizerInputError,
)
from hma_db.model import SMALL_TABLE_ROWS, check_scale, fit_hma
from hma_db.schema import (
    Metadata,
    ParentOrder,
    ParentSum,
    PresenceRule,
    RowFormula,
    StepRule,
    find_formulas,
    find_orders,
    find_presence,
    find_steps,
    find_sums,
    table_policy,
)
from hma_db.synthesizer import database, files
from hma_db.synthesizer.checks import check_chunk_rows, check_row_counts, check_seed
from hma_db.synthesizer.chunks import DEFAULT_CHUNK_ROWS, ChunkSampler, iter_sample
from hma_db.synthesizer.links import build_links, referenced_columns
from hma_db.synthesizer.params import (
    check_locales,
    check_small_table_rows,
    check_table_parameters,
    default_parameters,
)
from hma_db.synthesizer.rules import (
    check_all,
    check_skip_rules,
    constraint_copies,
    fit_multi_table,
    fit_table,
    invalid_rows,
    is_multi_table,
    path_rules,
    rule_label,
    rule_labels,
    ruled_columns,
    unknown_skips,
)
from hma_db.synthesizer.sdv.compat import (
    as_metadata,
    check_integer_key_regex,
    check_regex_formats,
    day,
    installed_sdv_version,
    restore_labels,
    string_labels,
    warn_overflowed_keys,
    warn_small_scale,
)
from hma_db.synthesizer.sdv.methods import SDVMethods
from hma_db.synthesizer.state import FittedState, SavedSynthesizer, from_state, to_state
from hma_db.transform import TableTransformer, find_constant_within, find_parent_copies

logger = logging.getLogger(__name__)

SYNTHESIZER_NAME = "GaussianCopulaSynthesizer"


class HMASynthesizer(SDVMethods):
    """Learn a whole database (any number of tables, any depth) and sample a synthetic copy.

    Args:
        metadata: the tables, keys and relationships: a :class:`~hma_db.Metadata`, SDV's
            ``Metadata`` (anything with ``to_dict()``) or a dict in SDV's layout. An hma_db
            ``Metadata`` edited or detected and not saved gets SDV's ``UserWarning``, once.
        locales: Faker locales for personal-data columns in every table.
        verbose: show progress bars while fitting and sampling.
        seed: an integer makes fitting and sampling reproducible in any process; ``None``
            draws fresh randomness.
        find_rules: at ``fit``, find the inequalities between two date or number columns of a
            table that hold in every real row (shipped >= ordered) and keep them like declared
            constraints (see :meth:`get_constraints`). The source database's CHECKs that
            compare two columns (``CHECK (shipped_date >= order_date)``) are kept either way.
            Also found: a child naming one ancestor along two foreign-key paths
            (``payment.customer = payment.rental.customer``), a parent column summing its
            children's (``Invoice.Total = sum(InvoiceLine.UnitPrice * Quantity)``), a column
            that is the sum or product of two others of its row.
        skip_rules: found rules to leave out, one by one, each named
            ``f"{rule.table_name}: {rule.describe()}"`` for a rule of :meth:`get_constraints`
            (``["Track: Bytes > Milliseconds"]``); a name no rule has gets a warning
            at ``fit``. Kept in the model file.
        small_table_rows: a root table (no parent) of at most this many rows, or of fewer rows
            than modeled columns, is not drawn from its copula: its rows' fitted values are
            replayed in a random order (each repeated ``scale`` times), so its children keep
            their real counts; its personal columns are still generated and its keys new.
            ``0`` turns it off. Default 30: Chinook's and Northwind's lookup tables.

    Example:
        >>> synthesizer = HMASynthesizer(metadata, locales=["en_US", "fr_CA"], seed=7)
        >>> synthesizer.set_table_parameters("Invoice", {"default_distribution": "truncnorm"})
        >>> synthesizer.fit(data)
        >>> synthetic = synthesizer.sample(scale=0.5)
    """

    def __init__(self, metadata: Metadata | dict, locales: list[str] | str = ("en_US",),
                 verbose: bool = True, seed: int | None = None, find_rules: bool = True,
                 skip_rules: list[str] | None = None, small_table_rows: int = SMALL_TABLE_ROWS):
        super().__init__()
        metadata = as_metadata(metadata)
        metadata.validate()
        check_regex_formats(metadata)
        check_seed(seed)
        self.metadata = metadata.copy()
        self.locales = check_locales(list(locales) if isinstance(locales, tuple) else locales)
        # get_parameters gives the locales back as they were given, as SDV does.
        self._given_locales = list(locales) if isinstance(locales, tuple) else copy.copy(locales)
        self.verbose = bool(verbose)
        self.seed = None if seed is None else int(seed)
        self._table_parameters = {t: default_parameters(self.locales) for t in self.metadata.tables}
        self._state: FittedState | None = None
        self._creation_date = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self._prepared: dict[str, dict] | None = None
        self._labels: dict[str, dict] = {}  # column labels that were not strings, per table
        self._entropy = np.random.SeedSequence(self.seed).entropy
        self.find_rules = bool(find_rules)
        self.skip_rules = check_skip_rules(skip_rules)
        self.small_table_rows = check_small_table_rows(small_table_rows)
        self._declared: list = []  # constraints given to add_constraints
        self._named_defaults: set[str] = set()  # tables whose default_distribution was set
        self._found: list = []  # rules found in the data at the last fit

    # ------------------------------------------------------------------------- parameters
    def get_parameters(self) -> dict[str, Any]:
        """The constructor's arguments except the metadata (a copy): ``locales`` as given and
        ``verbose``, as in SDV, and ``seed`` when one was given."""
        params = {"locales": copy.copy(self._given_locales), "verbose": self.verbose}
        return params if self.seed is None else {**params, "seed": self.seed}

    def get_metadata(self) -> Metadata:
        """A copy of the metadata the synthesizer was built with."""
        return self.metadata.copy()

    def set_table_parameters(self, table_name: str, table_parameters: dict[str, Any]) -> None:
        """Set a table's Gaussian copula parameters (used by the next ``fit``).

        Args:
            table_name: a table of the metadata.
            table_parameters: any of ``default_distribution``, ``numerical_distributions``
                (``{column: distribution}``), ``enforce_min_max_values``, ``enforce_rounding``,
                ``locales``. As in SDV, the given keys replace earlier values and the others
                are kept (``numerical_distributions`` is replaced as a whole). Distributions:
                ``norm``, ``beta``, ``truncnorm``, ``gamma``, ``uniform``, ``student_t``,
                ``empirical`` (the values' quantiles, interpolated between at most 100 knots;
                also chosen for a column no family fits, see ``get_learned_distributions``).

        Raises:
            SynthesizerInputError: an unknown table, parameter, column or distribution, or the
                non-parametric ``gaussian_kde``.
        """
        params = check_table_parameters(self.metadata, table_name, table_parameters)
        self._table_parameters[table_name].update(params)
        if "default_distribution" in params:  # named: used as asked, as SDV does
            self._named_defaults.add(table_name)

    def get_table_parameters(self, table_name: str) -> dict[str, Any]:
        """``{'synthesizer_name': 'GaussianCopulaSynthesizer', 'synthesizer_parameters': {...}}``."""
        self._check_table(table_name)
        return {"synthesizer_name": SYNTHESIZER_NAME,
                "synthesizer_parameters": copy.deepcopy(self._table_parameters[table_name])}

    @property
    def _fitted(self) -> bool:
        """SDV's flag: whether the synthesizer is fitted (the fit itself is ``_state``)."""
        return self._state is not None

    @_fitted.setter
    def _fitted(self, value: bool) -> None:
        # Code written for SDV sets the flag; False forgets the fit, True cannot make one.
        if not value:
            self._state = None
        elif self._state is None:
            raise NotFittedError("This HMASynthesizer has not been fitted: setting _fitted "
                                 "cannot fit it; call fit() first.")

    def get_info(self) -> dict[str, Any]:
        """SDV's summary: class name, creation and last fit dates (``'YYYY-MM-DD'``), whether it
        is fitted, and under SDV's key ``fitted_sdv_version`` the ``sdv`` release installed
        beside hma_db at fit time, or hma_db's own when there was none (see
        :attr:`fitted_version`)."""
        fitted = self._state
        stamp = None
        if fitted is not None:
            stamp = fitted.versions.get("sdv") or fitted.versions.get("hma_db")
        return {"class_name": type(self).__name__, "creation_date": day(self._creation_date),
                "is_fit": fitted is not None, "last_fit_date": day(fitted and fitted.fit_date),
                "fitted_sdv_version": stamp}

    @property
    def fitted_version(self) -> str | None:
        """The hma_db release that fitted the model (None: not fitted, or a model file older
        than this stamp)."""
        return self._state.versions.get("hma_db") if self._state is not None else None

    @property
    def table_transformers(self) -> dict[str, TableTransformer]:
        """The fitted transformer of each table, or those ``preprocess`` prepared; {} before."""
        if self._state is not None:
            return self._state.transformers
        return dict(self._prepared["transformers"]) if self._prepared else {}

    @property
    def fit_date(self) -> str | None:
        """When the model was fitted, as an ISO timestamp in UTC (None: not fitted)."""
        return self._state.fit_date if self._state is not None else None

    def get_loss_values(self, table_name: str | None = None):
        """SDV's loss curve of a neural table model: not applicable, hma_db's tables are
        Gaussian copulas fitted in closed form, without training epochs."""
        raise SynthesizerInputError(
            "get_loss_values is not applicable: hma_db models every table with a Gaussian "
            "copula fitted in closed form, which has no training loss.")

    def _check_table(self, table_name: str) -> None:
        if not isinstance(table_name, str) or table_name not in self.metadata.tables:
            raise SynthesizerInputError(
                f"Unknown table {table_name!r}; the metadata has: "
                f"{', '.join(sorted(self.metadata.tables))}.")

    # -------------------------------------------------------------------- constraints
    def add_constraints(self, constraints: list) -> None:
        """Add business rules every sampled row keeps (applied from the next ``fit``).

        Args:
            constraints: hma_db's ``Inequality``, ``Range``, ``FixedCombinations``,
                ``OneHotEncoding``, ``FixedIncrements`` (each with ``table_name``), SDV's
                objects of those classes, or programmable constraints with SDV's interface
                (``SingleTableProgrammableConstraint``). When sampling in chunks a constraint
                sees whole rows of one chunk at a time.

        Raises:
            SynthesizerInputError: an unknown table or column, a key column, or an object that
                is not a constraint.

        Example:
            >>> synthesizer.add_constraints([
            ...     Inequality("order_date", "shipped_date", table_name="orders")])
        """
        if not isinstance(constraints, (list, tuple)):
            raise SynthesizerInputError(
                f"add_constraints takes a list of constraints; found {type(constraints).__name__}.")
        checked = check_all(self.metadata, self.constraint_objects(list(constraints)))
        if self._state is not None:
            warnings.warn("The synthesizer is fitted: the new constraints apply from the next "
                          "fit.", UserWarning, stacklevel=2)
        self._declared += checked

    def get_constraints(self) -> list:
        """The declared constraints, then the rules found in the data at the last ``fit``
        (``rule.found`` is True for those); copies."""
        return constraint_copies(self._declared + self._found)

    def validate_constraints(self, synthetic_data: dict[str, pd.DataFrame]) -> None:
        """Check that every row of ``synthetic_data`` keeps every constraint (declared and
        found).

        Raises:
            DataError: naming each broken constraint with its count of rows.
        """
        fitted = self._state.constraints if self._state is not None else {}
        broken = invalid_rows(self._declared + self._found, synthetic_data, fitted)
        if broken:
            raise DataError("Rows break constraints: " + "; ".join(
                f"{c!r}: {n} row(s)" for c, n in broken))

    # ------------------------------------------------------------------------ fitting
    def fit(self, data: dict[str, pd.DataFrame], row_counts: dict[str, int] | None = None,
            executor: Any = None) -> None:
        """Learn every table and relationship from ``data`` (``{table: DataFrame}``).

        The data is checked against the metadata first: missing tables or columns, NULL or
        repeated primary keys and foreign keys that reference nothing raise one
        :class:`~hma_db.DataError` listing every problem.

        Args:
            data: the tables, or a referentially closed subset of them.
            row_counts: the full row count of each table when ``data`` is a subset (e.g.
                ``metadata.row_counts`` from :func:`~hma_db.source.reflect`): ``sample(scale=1.0)``
                then gives every table its full size. Tables not listed keep ``len(data[t])``.
            executor: fits the tables of one level of the hierarchy, and the marginals of a
                wide table, at once: anything with ``map(fn, *iterables)`` giving the results
                in order (``concurrent.futures.ProcessPoolExecutor``,
                :class:`hma_db.cluster.ClientExecutor` for Dask; threads gain nothing, the
                fits hold the GIL). The model is the same without one.

        Example:
            >>> with ProcessPoolExecutor(2) as pool:
            ...     synthesizer.fit(data, executor=pool)
        """
        self.fit_processed_data(self.preprocess(data), row_counts=row_counts, executor=executor)
        self._prepared = None  # the fitted state holds what preprocess prepared

    def preprocess(self, data: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """Check ``data`` and turn each table into numbers (modeled columns plus raw keys)."""
        data, self._labels = string_labels(data)
        self._validate(data)
        check_integer_key_regex(self.metadata, data)
        processed = {}
        # Fitted transformers wait here until the model fits, so a failed fit keeps the old model.
        self._prepared = {"transformers": {}, "columns": {}, "dtypes": {}, "kept": {},
                          "constraints": {}, "found": [], "skipped": [], "view": self.metadata,
                          "multi": [c for c in self._declared if is_multi_table(c)]}
        if self._prepared["multi"]:
            # A programmable constraint may change the frames in place: never the caller's.
            data, self._prepared["view"] = fit_multi_table(
                self.metadata, {t: f.copy() for t, f in data.items()}, self._prepared["multi"])
        if self.find_rules:  # a parent column that sums its children's: recomputed at sampling
            modeled = {t for t in self.metadata.tables
                       if table_policy(self.metadata.tables, t) == "model"}
            # Turned back last first: a status set by its date after the date has its place,
            # and by whether a column is set after every other rule.
            sums = find_presence(self.metadata, data, modeled) + find_steps(
                self.metadata, data, modeled) + find_formulas(
                self.metadata, data, modeled) + find_sums(self.metadata, data, modeled) + \
                find_orders(self.metadata, data, modeled)
            self._prepared["skipped"] += [r for r in sums if rule_label(r) in self.skip_rules]
            sums = [r for r in sums if rule_label(r) not in self.skip_rules]
            self._prepared["found"] += sums
            self._prepared["multi"] += sums
        self._prepared["view"] = self.transformer_view(self._prepared["view"])
        with self._quiet():
            for table in self._bar(sorted(self.metadata.tables), "Preprocess tables"):
                processed[table] = self._preprocess_table(table, data[table])
        # A billing address that is the customer's address: copied from the sampled parent.
        transformers = self._prepared["transformers"]
        for table, copies in find_parent_copies(self.metadata, data, transformers).items():
            transformers[table].parent_copies = copies
        # Every track of an album has one genre: kept within each synthetic parent.
        ruled = ruled_columns(self._declared + self._prepared["found"])
        for table, held in find_constant_within(self.metadata, data, transformers,
                                                ruled).items():
            transformers[table].within_parent = held
        return processed

    def validate(self, data: dict[str, pd.DataFrame]) -> None:
        """Check ``data`` against the metadata as ``fit`` does, without fitting.

        Raises:
            DataError: listing every missing table or column, NULL or repeated key and
                foreign key that references nothing.
        """
        self._validate(string_labels(data)[0])

    def _validate(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise SynthesizerInputError(
                f"data must be a dict {{table name: DataFrame}}; found {type(data).__name__}.")
        self.metadata.validate()
        self.metadata.validate_data(data)

    def _preprocess_table(self, table: str, frame: pd.DataFrame) -> pd.DataFrame:
        params = self._table_parameters[table]
        modeled, metadata = frame, self._prepared["view"]
        if table_policy(self.metadata.tables, table) == "model":  # kept/emptied: not sampled
            found, constraints, skipped = fit_table(metadata, table, frame, self._declared,
                                                    self.find_rules, self.skip_rules)
            self._prepared["found"] += found
            self._prepared["skipped"] += skipped
            if constraints is not None:  # the transformer models the reparametrized columns
                modeled, metadata = constraints.fit_transform(
                    frame, metadata, bounded=params["enforce_min_max_values"])
                self._prepared["constraints"][table] = constraints
        transformer = TableTransformer(
            table, metadata, locales=params["locales"],
            enforce_min_max_values=params["enforce_min_max_values"],
            enforce_rounding=params["enforce_rounding"])
        numeric = _positional(transformer.fit_transform(modeled))
        self._prepared["transformers"][table] = transformer
        # Output columns follow the metadata's order, as in SDV.
        self._prepared["columns"][table] = list(self.metadata.tables[table]["columns"])
        self._prepared["dtypes"][table] = {c: str(d) for c, d in frame.dtypes.items()}
        if table_policy(self.metadata.tables, table) == "keep":  # copied verbatim when sampling
            self._prepared["kept"][table] = frame.reset_index(drop=True)
        keys = _positional(frame[self._key_columns(table)])
        logger.debug("table %s: %d rows, %d modeled columns", table, len(frame), numeric.shape[1])
        return pd.concat([numeric, keys], axis=1)

    def _key_columns(self, table: str) -> list[str]:
        keys = referenced_columns(self.metadata, table) + self.metadata.foreign_key_columns(table)
        return list(dict.fromkeys(keys))

    def fit_processed_data(self, processed_data: dict[str, pd.DataFrame],
                           row_counts: dict[str, int] | None = None,
                           executor: Any = None) -> None:
        """Fit the hierarchical model on the output of :meth:`preprocess` (``row_counts`` and
        ``executor``: see :meth:`fit`)."""
        prepared = self._prepared
        if prepared is None:
            raise NotFittedError("fit_processed_data needs the output of preprocess(data) "
                                 "from this synthesizer; call preprocess first, or fit(data).")
        if not isinstance(processed_data, dict) or set(processed_data) != set(self.metadata.tables):
            raise SynthesizerInputError(
                "fit_processed_data expects {table: frame} for every table of the metadata, as "
                "preprocess(data) returns it.")
        transformers = prepared["transformers"]
        numeric = {t: frame[transformers[t].modeled_columns] for t, frame in processed_data.items()}
        links = build_links(self.metadata, processed_data, progress=self._bar)
        rng = np.random.default_rng(self._seed_sequence(0))
        counts = check_row_counts(row_counts, processed_data)
        with self._quiet():
            parameters = _with_defaults(self._table_parameters, self._named_defaults)
            for table, params in parameters.items():  # categories' slices (model/latent.py)
                params["slices"] = transformers[table].slice_edges()
            model = fit_hma(self.metadata, numeric, links, parameters, rng,
                            progress=self._bar if self.verbose else None, row_counts=counts,
                            kept=prepared["kept"], find_agreements=self.find_rules,
                            small_table_rows=self.small_table_rows, executor=executor)
        policies = {t: table_policy(self.metadata.tables, t) for t in self.metadata.tables}
        self._state = FittedState(
            model=model, transformers=transformers, columns=prepared["columns"],
            dtypes=prepared["dtypes"], sample_rng=np.random.default_rng(self._seed_sequence(1)),
            fit_date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            versions={"hma_db": __version__, "sdv": installed_sdv_version()},
            table_policies={t: p for t, p in policies.items() if p != "model"},
            kept=prepared["kept"], constraints=prepared["constraints"],
            multi_table=prepared["multi"])
        paths, skipped = path_rules(self.metadata, model.relationships, self.skip_rules)
        self._found = prepared["found"] + paths
        unknown = unknown_skips(self.skip_rules, prepared["skipped"] + skipped)
        if unknown:
            warnings.warn(f"skip_rules names no rule found in this data: {', '.join(unknown)}; "
                          f"found: {', '.join(rule_labels(self._found)) or 'none'}.", stacklevel=3)

    def fit_database(self, source, max_rows: int | dict[str, int] | None = None,
                     executor: Any = None) -> HMASynthesizer:
        """Read every table of the metadata from a database URL or engine and fit on it.

        Args:
            source: the database (only read).
            max_rows: fit on a referentially closed random subset of about this many rows (or
                ``{table: rows}``, see :func:`hma_db.source.subset.read_subset`), chosen with the
                synthesizer's seed; sampling still gives the tables their full sizes at
                ``scale=1.0``.
            executor: see :meth:`fit`.
        """
        return database.fit_database(self, source, max_rows=max_rows, executor=executor)

    def get_learned_distributions(self, table_name: str) -> dict[str, dict]:
        """The marginal distribution learned for each modeled column of a table (any table).

        Returns:
            ``{column: {'distribution': name, 'learned_parameters': {...}}}``; when the requested
            distribution could not be fitted, the fallback that was used is reported.
        """
        self._check_table(table_name)
        fitted = self._fitted_state("get_learned_distributions")
        learned = copy.deepcopy(fitted.model.learned_distributions(table_name))
        columns = self.metadata.tables[table_name]["columns"]
        # A column modeled only through a derived one (``Bytes.gap``, the gap a rule keeps it
        # above another by) is shown under its own name.
        return {(c.rpartition(".")[0] if c.rpartition(".")[0] in columns
                 and c.rpartition(".")[0] not in learned else c): v for c, v in learned.items()}

    # ----------------------------------------------------------------------- sampling
    def reset_sampling(self, seed: int | None = None) -> None:
        """Restart the sampling random stream.

        Args:
            seed: ``None`` (as in SDV) restarts the synthesizer's own stream, so the next
                ``sample`` repeats the first one. An integer starts the stream of that seed
                instead: the same seed gives the same rows in any process, whatever seed the
                model was fitted with (``reset_sampling(7)`` on a model fitted with ``seed=7`` is
                its own stream). Later calls without a seed go back to the synthesizer's own.

        Example:
            >>> synthesizer.reset_sampling(seed=42)
            >>> first = synthesizer.sample(scale=0.1)
        """
        check_seed(seed)
        if self._state is not None:  # fit starts the synthesizer's own stream
            self._state.sample_rng = np.random.default_rng(self._seed_sequence(1, seed))

    def _seed_sequence(self, stream: int, seed: int | None = None) -> np.random.SeedSequence:
        # Separate, fixed streams for fitting and sampling, so calling one never shifts the other.
        entropy = self._entropy if seed is None else int(seed)
        return np.random.SeedSequence(entropy, spawn_key=(stream,))

    def _fitted_state(self, method: str) -> FittedState:
        if self._state is None:
            raise NotFittedError(
                "This synthesizer has not been fitted. Please fit your synthesizer first before "
                f"sampling synthetic data (fit(data) before {method}).")
        return self._state

    def sample_sizes(self, scale: float = 1.0) -> dict[str, int]:
        """The rows each table gets from ``sample(scale)``: ``round(rows * scale)``, at least 1
        for a table that had rows (half rounds up)."""
        check_scale(scale)
        return self._fitted_state("sample_sizes").sample_sizes(float(scale))

    def sample(self, scale: float = 1.0) -> dict[str, pd.DataFrame]:
        """Sample every table; ``scale`` multiplies each table's row count (at least 1 row).

        Returns:
            ``{table: DataFrame}`` with the columns in the metadata's order and the source
            dtypes, unique primary keys and foreign keys that all reference sampled parent rows.
            A ``scale`` that leaves a table with fewer than one row gets SDV's warning.
        """
        fitted = self._fitted_state("sample")
        check_scale(scale)
        warn_small_scale(fitted.sample_sizes(1.0), float(scale))
        database.warn_unchecked(self.metadata, "sample()")
        bar = self._bar(None, "Sampling tables", total=len(self.metadata.tables))
        with self._quiet():
            (out,) = iter_sample(fitted, self.metadata, float(scale), chunk_rows=None,
                                 on_rows=None if bar is None else lambda table, rows: bar.update())
        if bar is not None:
            bar.close()
        warn_overflowed_keys(out, self.metadata, {
            t: dict(tf.source_dtypes) for t, tf in fitted.transformers.items()})
        return restore_labels(out, self._labels)

    def sample_scale(self, scale: float = 1.0) -> dict[str, pd.DataFrame]:
        """SDV 2.0's name for :meth:`sample`."""
        return self.sample(scale)

    def sample_chunks(self, scale: float = 1.0, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                      on_rows: Callable[[str, int], None] | None = None
                      ) -> Iterator[dict[str, pd.DataFrame]]:
        """Sample like :meth:`sample`, yielding ``{table: DataFrame}`` chunks of bounded size.

        Small tables come whole in the first chunk; the others are spread evenly over the
        chunks (about ``chunk_rows`` rows of the largest table each), with exact totals, keys and
        unique columns unique across chunks and every foreign key pointing at a row of the same
        chunk or of an earlier one (see :mod:`hma_db.synthesizer.chunks`). Memory depends on
        ``chunk_rows``, not on ``scale``. ``on_rows(table, rows)`` is called for each table of
        each chunk (progress bars).
        """
        check_scale(scale)
        check_chunk_rows(chunk_rows)
        fitted = self._fitted_state("sample_chunks")
        with self._quiet():
            yield from iter_sample(fitted, self.metadata, float(scale), int(chunk_rows), on_rows)

    def chunk_sampler(self, scale: float = 1.0, chunk_rows: int = DEFAULT_CHUNK_ROWS
                      ) -> ChunkSampler:
        """The run :meth:`sample_chunks` would make, planned, with chunks to sample one by one
        and anywhere (:mod:`hma_db.cluster` samples them on Dask workers): ``sampler.chunk(0)``
        here first, then ``sampler.chunk(n, resident)`` for the others, in any order. The rows
        are those of :meth:`sample_chunks` from the same sampling state."""
        check_scale(scale)
        check_chunk_rows(chunk_rows)
        return ChunkSampler(self._fitted_state("chunk_sampler"), self.metadata, float(scale),
                            int(chunk_rows))

    def sample_to_database(self, target, scale: float = 1.0, *, schema: str | None = None,
                           if_exists: str = "fail", chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
                           fire_triggers: bool = False) -> dict[str, int]:
        """Sample and write the tables into a database, about ``chunk_rows`` rows of the largest
        table at a time in one transaction (None: all at once); rows written per table.
        ``fire_triggers``: load existing tables that have triggers (refused otherwise)."""
        return database.sample_to_database(self, target, scale=scale, schema=schema,
                                           if_exists=if_exists, chunk_rows=chunk_rows,
                                           fire_triggers=fire_triggers)

    def sample_to_directory(self, directory: str | Path, scale: float = 1.0, *,
                            format: str = "csv", if_exists: str = "fail",
                            chunk_rows: int | None = DEFAULT_CHUNK_ROWS) -> dict[str, int]:
        """Sample and write the tables as files, one ``<table>.csv`` or ``<table>.parquet``
        each, in chunks of about ``chunk_rows`` rows (see :func:`hma_db.target.files`); rows
        written per table.

        Example:
            >>> synthesizer.sample_to_directory("synthetic/", scale=0.1, format="parquet")
            {'Artist': 28, 'Album': 35, ...}
        """
        return database.sample_to_directory(self, directory, scale=scale, format=format,
                                   if_exists=if_exists, chunk_rows=chunk_rows)

    # --------------------------------------------------------------------- progress, noise
    def _bar(self, iterable: Iterable | None, desc: str, total: int | None = None):
        """``iterable`` wrapped in a progress bar when verbose (a bar to update by hand when
        ``iterable`` is None; None when not verbose)."""
        if not self.verbose:
            return iterable
        return tqdm(iterable, desc=desc, total=total)

    @contextmanager
    def _quiet(self):
        """Without ``verbose``, nothing is printed: library warnings are silenced too."""
        if self.verbose:
            yield
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield

    # ---------------------------------------------------------------------- save / load
    def save(self, filepath: str | Path, format: str | None = None) -> None:  # noqa: A002 - SDV's name
        """Save the synthesizer.

        Args:
            filepath: the file to write (SDV's convention is a ``.pkl`` name).
            format: ``"pickle"`` (like SDV) or ``"json"``; by default JSON for a ``.json``
                name and pickle for any other. Both hold the same plain data (no live
                objects), so loading either runs no code; both keep the SQL schema of
                reflected metadata, so both create the same target tables. With the
                environment variable ``HMA_DB_MODEL_KEY`` set, a pickle starts with the line
                ``HMADB-SIG1 <HMAC-SHA256 of the rest, in hex>``, checked on load when the key is set.
        """
        if format not in (None, *files.FORMATS):
            raise SynthesizerInputError(f"format must be 'pickle' or 'json'; found {format!r}.")
        files.save(to_state(self._saved()), filepath, format)

    def _saved(self) -> SavedSynthesizer:
        fitted = self._state
        unfitted_stream = None if fitted else \
            np.random.default_rng(self._seed_sequence(1)).bit_generator.state
        return SavedSynthesizer(
            parameters={"locales": list(self.locales), "verbose": self.verbose, "seed": self.seed,
                        "find_rules": self.find_rules, "skip_rules": sorted(self.skip_rules),
                        "small_table_rows": self.small_table_rows,
                        "transformers": self.transformer_choices(),
                        "named_defaults": sorted(self._named_defaults)},
            metadata=self.metadata, constraints=self._declared + self._found,
            table_parameters=self._table_parameters, entropy=self._entropy,
            creation_date=self._creation_date, fitted=fitted, sample_rng_state=unfitted_stream)

    @classmethod
    def _restore(cls, saved: SavedSynthesizer) -> HMASynthesizer:
        params = saved.parameters
        synthesizer = cls(saved.metadata, locales=params["locales"], verbose=params["verbose"],
                          seed=params["seed"], find_rules=params.get("find_rules", True),
                          skip_rules=params.get("skip_rules"),
                          small_table_rows=params.get("small_table_rows", SMALL_TABLE_ROWS))
        synthesizer._declared = [c for c in saved.constraints if not c.found]
        synthesizer._found = [c for c in saved.constraints if c.found]
        synthesizer._table_parameters = saved.table_parameters
        synthesizer._entropy, synthesizer._creation_date = saved.entropy, saved.creation_date
        synthesizer._state = saved.fitted
        if saved.fitted is not None:  # found sums are data; programmable ones are not saved
            saved.fitted.multi_table = [c for c in synthesizer._found if isinstance(
                c, (PresenceRule, StepRule, RowFormula, ParentSum, ParentOrder))]
        synthesizer.restore_transformer_choices(params.get("transformers"))
        named = params.get("named_defaults") or []
        synthesizer._named_defaults = {t for t in named if isinstance(t, str)} & set(
            synthesizer.metadata.tables)
        return synthesizer

    @classmethod
    def load(cls, filepath: str | Path, *, trust_pickle: bool = True) -> HMASynthesizer:
        """Load a synthesizer saved with :meth:`save` (pickle or JSON, detected from the file).

        Both formats hold plain data only: loading builds values and numpy arrays, and a file
        that asks for anything else is refused before it is called. ``trust_pickle=False``
        refuses a pickle outright (what the command line does without ``--trust-pickle``).
        With ``HMA_DB_MODEL_KEY`` set, a pickle must carry its signature (see :meth:`save`).

        Raises:
            ModelFileError: the file is missing, is not an hma_db model, was saved by a
                release whose pickles held live objects (hma_db 0.1), or is a pickle that was
                not trusted or whose signature is missing or wrong.
        """
        try:
            return cls._restore(from_state(files.load(filepath, trust_pickle)))
        except ModelFileError:
            raise
        except HmaDbError as exc:
            raise ModelFileError(f"'{filepath}' holds an hma_db model that does not load: "
                                 f"{exc}") from exc
        except Exception as exc:  # noqa: BLE001 - a damaged model can fail in any component
            raise ModelFileError(f"'{filepath}' is a damaged hma_db model: "
                                 f"{type(exc).__name__}: {exc}") from exc


def load_synthesizer(filepath: str | Path, *, trust_pickle: bool = True) -> HMASynthesizer:
    """Load a synthesizer saved with :meth:`HMASynthesizer.save` (pickle or JSON).

    The format is detected from the file's first bytes; either holds plain data only, so
    loading runs no code from the file. ``trust_pickle=False`` refuses a pickle outright.

    Raises:
        ModelFileError: the file is missing, unreadable, or not an hma_db model.

    Example:
        >>> synthesizer = load_synthesizer("my_synthesizer.pkl")
    """
    return HMASynthesizer.load(filepath, trust_pickle=trust_pickle)


def _positional(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` indexed 0..n-1 (``reset_index(drop=True)``, a copy, only where it is not)."""
    index = frame.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1 \
            and index.name is None:
        return frame
    return frame.reset_index(drop=True)


def _with_defaults(parameters: dict[str, dict], named_defaults: set[str] = frozenset()
                   ) -> dict[str, dict]:
    """Table parameters where ``default_named`` says the table's default distribution was
    asked for (a distribution asked for ``Bytes`` applies to ``Bytes.gap`` in the model)."""
    out = copy.deepcopy(parameters)
    for table, params in out.items():
        params["default_named"] = table in named_defaults
    return out
