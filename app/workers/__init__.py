"""The engine worker thread, the training worker and short pool jobs."""
