"""midalign.inference (see README)."""
