"""Queue and agent records (tables and the functions that change them)."""
