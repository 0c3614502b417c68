"""Teleoperation devices and the loop that records their demonstrations."""
