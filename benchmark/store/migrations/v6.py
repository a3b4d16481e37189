"""Schema 6: live_epochs: the epochs of running attempts, for every reader.

Only a new table, made by `create_all`: nothing to alter.
"""

VERSION = 6
COLUMNS: list[tuple[str, str, str]] = []
