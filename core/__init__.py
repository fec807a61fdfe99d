"""The shared vocabulary of every layer: the config model, typed errors and the clock.

It imports nothing of ours, so ``bot``, ``commands``, ``approvals`` and ``integrations`` can
all depend on it without breaking the one-way import rule of ARCHITECTURE.md.
"""
