"""hma_db through SDV's multi-table API, on the bundled Chinook database.

Code written for SDV's ``HMASynthesizer`` runs with only its imports changed. This script reflects
the metadata from the database, loads the tables into pandas, edits the metadata, sets per-table
parameters, fits, samples at half scale, saves the model, loads it back and samples the same rows
again, and writes the synthetic tables as CSV files::

    python examples/sdv_api.py [OUTPUT_DIR]      # default: examples/sdv_api_output
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from hma_db import HMASynthesizer, load_synthesizer, reflect

HERE = Path(__file__).resolve().parent
CHINOOK = f"sqlite:///{HERE / 'chinook.sqlite'}"


def load_tables(url: str, names: list[str]) -> dict[str, pd.DataFrame]:
    """One DataFrame per table, as SDV users bring them (from CSV files, a warehouse...)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {name: pd.read_sql_table(name, conn) for name in names}
    finally:
        engine.dispose()


def main(output_dir: Path) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)

    # Metadata in SDV's multi-table layout, read from the database's schema; edit it as in SDV.
    metadata = reflect(CHINOOK)
    metadata.update_column("Country", "Customer", sdtype="categorical")
    metadata.validate()
    data = load_tables(CHINOOK, list(metadata.tables))

    synthesizer = HMASynthesizer(metadata, locales=["en_US", "en_CA"], verbose=False, seed=7)
    synthesizer.set_table_parameters("Invoice", {
        "default_distribution": "truncnorm",
        "numerical_distributions": {"Total": "gamma"},
        "enforce_min_max_values": True,
    })
    synthesizer.fit(data)
    learned = synthesizer.get_learned_distributions("Invoice")["Total"]
    # A distribution that cannot be fitted falls back to another one, and says so.
    fallback = f" (fallback from {learned['fallback_from']})" if "fallback_from" in learned else ""
    print(f"Invoice.Total is modeled with {learned['distribution']}{fallback}")

    synthetic = synthesizer.sample(scale=0.5)
    print(f"{'table':<14}{'real':>8}{'synthetic':>11}")
    for name in metadata.topological_order():
        print(f"{name:<14}{len(data[name]):>8}{len(synthetic[name]):>11}")

    model_path = output_dir / "chinook_synthesizer.pkl"
    synthesizer.save(model_path)
    loaded = load_synthesizer(model_path)
    loaded.reset_sampling()  # restart the seeded stream: the same rows as the first sample
    again = loaded.sample(scale=0.5)
    same = all(again[name].equals(synthetic[name]) for name in synthetic)
    print(f"saved {model_path.name}, loaded it back; same rows again: {same}")

    for name, frame in synthetic.items():
        frame.to_csv(output_dir / f"{name}.csv", index=False)
    print(f"wrote {len(synthetic)} CSV files to {output_dir}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "sdv_api_output")
