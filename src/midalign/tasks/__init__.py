"""midalign.tasks (see README)."""
