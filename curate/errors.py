"""Errors a build reports as one line naming the file and key."""


class BuildError(ValueError):
    """A build that cannot produce a bundle."""
