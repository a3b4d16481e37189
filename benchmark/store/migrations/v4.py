"""Schema 4: jobs.data_hash: directory datasets keyed by their content (earlier jobs, keyed
by their path, are adopted by `grid`).

Columns added to existing tables, each with the server default that reads as the
behaviour before it.
"""

VERSION = 4
COLUMNS = [
    ("jobs", "data_hash", "VARCHAR(64) NOT NULL DEFAULT ''"),
]
