"""The ``edgebench`` command: a thin layer over the library (entry point: ``edgebench.cli.main``)."""
