"""Schema 9: your own factors, training pieces and metrics.

- jobs.factors (every declared factor's value, JSON) and studies.factors (the study's
  declarations, name -> default);
- jobs.loss, .step, .metrics, .val_size, .pieces_hash: your own pieces and a validation
  split, and jobs.schedule widened to hold a "module:function" (PostgreSQL checks lengths;
  SQLite does not);
- the table `metrics` (made by `create_all`): every number a run records beside its built-in
  columns, per epoch;
- studies.outcome, study_sections.outcome, study_claims.outcome: what each decides on (JSON:
  metric, direction, unit; NULL: final test accuracy, or the study's).

Columns added to existing tables, each with the server default that reads as the behaviour
before it (no factors, the built-in loss and step, no metrics, no validation split).
"""

VERSION = 9
COLUMNS = [
    ("jobs", "factors", "JSON NOT NULL DEFAULT '{}'"),
    ("studies", "factors", "JSON NOT NULL DEFAULT '{}'"),
    ("jobs", "loss", "VARCHAR(32) NOT NULL DEFAULT 'nll'"),
    ("jobs", "step", "VARCHAR(32) NOT NULL DEFAULT 'standard'"),
    ("jobs", "metrics", "JSON NOT NULL DEFAULT '[]'"),
    ("jobs", "val_size", "INTEGER NOT NULL DEFAULT 0"),
    ("jobs", "pieces_hash", "VARCHAR(64) NOT NULL DEFAULT ''"),
    ("studies", "outcome", "JSON"),
    ("study_sections", "outcome", "JSON"),
    ("study_claims", "outcome", "JSON"),
]
# Statements by dialect, run after the columns (each may run again: idempotent).
ALTER = {"postgresql": ["ALTER TABLE jobs ALTER COLUMN schedule TYPE VARCHAR(32)"]}
