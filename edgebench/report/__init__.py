"""``edgebench report``: one run as a static HTML page with its figures.

``build`` gathers the run, its comparisons and its history from the store and draws the figures
(``plots``); ``html`` writes the page beside them; ``write.write_report`` does both.
"""
