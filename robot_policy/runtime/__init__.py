"""Executing chunk policies in time: timestamped chunks and the scheduler that picks the action
for now, the controller (scheduler + safety filter), the fixed-rate loop, inference workers."""
