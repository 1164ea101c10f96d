"""midalign.analysis (see README)."""
