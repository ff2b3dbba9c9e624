"""Experiments: datasets, datapoints, runs and their results, as HoneyHive's ``evaluate()`` uses
them (the wire contract is captured in the issue's experiments-wire document)."""
