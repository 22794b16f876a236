"""Shared neural-network pieces: layers, likelihood heads and ELBO terms."""
