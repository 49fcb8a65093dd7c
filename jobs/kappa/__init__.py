"""The Kappa streaming job: one path from the log to the serving tables."""
