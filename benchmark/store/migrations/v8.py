"""Schema 8: jobs.augment: augmentation.

Columns added to existing tables, each with the server default that reads as the
behaviour before it.
"""

VERSION = 8
COLUMNS = [
    ("jobs", "augment", "VARCHAR(16) NOT NULL DEFAULT 'none'"),
]
