"""Schema 3: jobs.schedule, .warmup_epochs, .arch_hash: learning-rate schedules, warm-up
and your own networks.

Columns added to existing tables, each with the server default that reads as the
behaviour before it.
"""

VERSION = 3
COLUMNS = [
    ("jobs", "schedule", "VARCHAR(16) NOT NULL DEFAULT 'constant'"),
    ("jobs", "warmup_epochs", "INTEGER NOT NULL DEFAULT 0"),
    ("jobs", "arch_hash", "VARCHAR(64) NOT NULL DEFAULT ''"),
]
