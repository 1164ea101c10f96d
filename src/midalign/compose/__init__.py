"""midalign.compose (see README)."""
