"""Schema 2: study_claims: the statements a report checks.

Only a new table, made by `create_all`: nothing to alter.
"""

VERSION = 2
COLUMNS: list[tuple[str, str, str]] = []
