"""The curation stage: sources -> records -> filters -> dedup -> mix -> split -> bundle."""
__version__ = "0.1.0"
