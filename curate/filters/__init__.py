"""Filters answer keep, or drop with a reason code and a message; they never write files."""
