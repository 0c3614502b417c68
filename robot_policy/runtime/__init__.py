"""Executing chunk policies in time: closed-loop evaluation (scheduler, async worker and
fixed-rate loop arrive with the runtime issue)."""
