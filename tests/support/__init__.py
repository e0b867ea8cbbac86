"""Scripts that tests run in other processes."""
