"""Schema 7: runs.slurm_job_id: the Slurm job a worker ran in.

Columns added to existing tables, each with the server default that reads as the
behaviour before it.
"""

VERSION = 7
COLUMNS = [
    ("runs", "slurm_job_id", "VARCHAR(32)"),
]
