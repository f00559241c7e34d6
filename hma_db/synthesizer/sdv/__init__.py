"""What the synthesizer does the way SDV does, so code written for SDV runs with its imports
changed: metadata given as SDV's object or a dict, SDV's warnings and refusals (``compat``), and
the columns' transformers chosen with rdt's classes and kept as plain data (``transformers``).

Takes in the metadata, the data and rdt transformer objects; gives out an hma_db ``Metadata``,
checked data and, per column, the settings the transform stage applies at fit.
"""
