"""The offline permission proof: every request the platform makes, evaluated against its policies."""
