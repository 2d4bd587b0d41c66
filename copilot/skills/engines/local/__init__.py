"""The ``local`` engine: extractive text and embedding sentiment, no language model."""
