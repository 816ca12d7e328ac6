"""The workstation side of a measurement sweep: plan, run each worker, make and store records."""
