"""Executing chunk policies in time: timestamped chunks and the scheduler that picks the action
for now, the background inference worker, the fixed-rate loop, and closed-loop evaluation."""
