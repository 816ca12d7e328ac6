"""Workstation side of power measurement: summaries of logs captured on a board."""
