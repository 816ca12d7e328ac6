"""Boards in a labgrid lab: a target names a place or tags, and edgebench reserves, locks and
always releases the place around a run (``lease``), waiting its turn in the coordinator's queue
(``reserve``); ``janitor`` releases places whose edgebench holder (``holder``) is gone.
``client`` is the only module that imports labgrid, an optional dependency (``edgebench[lab]``).
"""
