"""Deduplication: exact on normalised text, then near with MinHash LSH.

Which twin is kept: identity over domain over general, then the earlier source, then the first
seen. Callers pass records already sorted in that priority order, so "earlier" means "kept".
"""
