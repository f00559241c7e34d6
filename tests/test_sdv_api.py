"""The examples of SDV's HMASynthesizer documentation, run on Chinook with only the imports changed.

Each block below is the documented call, with the documentation's ``guests`` table and its
``checkin_date`` / ``amenities_fee`` columns replaced by Chinook's ``Invoice`` table and its
``InvoiceDate`` / ``Total`` columns. SDV's imports were::

    from sdv.multi_table import HMASynthesizer
    from sdv.utils import load_synthesizer, simplify_schema
"""

from __future__ import annotations

import re

import pytest
from conftest import CHINOOK_SQLITE

from hma_db import HMASynthesizer, Metadata, load_synthesizer, simplify_schema
from hma_db.source.read import read_tables
from hma_db.source.reflect import reflect


@pytest.fixture(scope="module")
def chinook():
    url = f"sqlite:///{CHINOOK_SQLITE}"
    metadata = reflect(url)
    return metadata, read_tables(url, metadata)


def test_documented_examples(chinook, tmp_path, monkeypatch):
    metadata, data = chinook
    monkeypatch.chdir(tmp_path)

    # Creating a synthesizer
    synthesizer = HMASynthesizer(metadata)
    synthesizer = HMASynthesizer(
        metadata,
        locales=['en_US', 'en_CA', 'fr_CA']
    )

    # set_table_parameters
    synthesizer.set_table_parameters(
        table_name='Invoice',
        table_parameters={
            'enforce_min_max_values': True,
            'default_distribution': 'truncnorm',
            'numerical_distributions': {
                'InvoiceDate': 'uniform',
                'Total': 'beta'
            }
        }
    )

    # get_parameters
    parameters = synthesizer.get_parameters()
    assert parameters['locales'] == ['en_US', 'en_CA', 'fr_CA'] and parameters['verbose'] is True

    # get_table_parameters
    table_parameters = synthesizer.get_table_parameters(table_name='Invoice')
    assert table_parameters['synthesizer_name'] == 'GaussianCopulaSynthesizer'
    assert table_parameters['synthesizer_parameters']['default_distribution'] == 'truncnorm'
    assert table_parameters['synthesizer_parameters']['numerical_distributions'] == {
        'InvoiceDate': 'uniform', 'Total': 'beta'}

    # get_metadata
    metadata = synthesizer.get_metadata()
    assert isinstance(metadata, Metadata) and len(metadata.tables) == 11

    # fit
    synthesizer.fit(data)

    # get_learned_distributions
    learned = synthesizer.get_learned_distributions(table_name='Invoice')
    assert learned['Total']['distribution'] in ('beta', 'truncnorm', 'norm', 'uniform')
    assert isinstance(learned['Total']['learned_parameters'], dict)
    for table_name in metadata.tables:  # SDV limits this to root tables; hma_db does not
        synthesizer.get_learned_distributions(table_name=table_name)

    # save, load_synthesizer, HMASynthesizer.load
    synthesizer.save(
        filepath='my_synthesizer.pkl'
    )
    synthesizer = load_synthesizer(
        filepath='my_synthesizer.pkl'
    )
    synthesizer = HMASynthesizer.load(
        filepath='my_synthesizer.pkl'
    )

    # sample
    synthetic_data = synthesizer.sample(
        scale=1.0
    )
    assert set(synthetic_data) == set(data)
    for table_name, frame in data.items():
        assert list(synthetic_data[table_name].columns) == list(frame.columns)
        assert len(synthetic_data[table_name]) == len(frame)


def test_documented_simplify_schema(chinook, capsys):
    metadata, data = chinook
    simplified_data, simplified_metadata = simplify_schema(
        data=data,
        metadata=metadata
    )
    assert set(simplified_data) == set(simplified_metadata.tables) == set(data)
    assert "Kept 11 of 11 tables" in capsys.readouterr().out


def test_documented_quickstart_and_verbose(chinook, tmp_path, monkeypatch, capfd):
    metadata, data = chinook
    monkeypatch.chdir(tmp_path)

    # The page's first example
    synthesizer = HMASynthesizer(metadata)
    synthesizer.fit(data)
    synthetic_data = synthesizer.sample()

    assert set(synthetic_data) == set(data)
    for table_name, frame in data.items():
        assert list(synthetic_data[table_name].columns) == list(frame.columns)
        assert len(synthetic_data[table_name]) == len(frame)
    err = capfd.readouterr().err  # verbose defaults to True: a bar for each fitting stage
    for stage in ("Preprocess", "Learning relationships", "Modeling tables"):
        assert re.search(stage + r"[^\n\r]*: +100%\|", err), stage  # a finished tqdm bar

    # verbose=False: the synthesizer fits the data silently
    synthesizer = HMASynthesizer(
        metadata,
        verbose=False
    )
    synthesizer.fit(data)
    assert capfd.readouterr() == ("", "")

    # save writes a pickle file
    synthesizer.save(filepath='my_synthesizer.pkl')
    assert (tmp_path / 'my_synthesizer.pkl').read_bytes()[:1] == b"\x80"
