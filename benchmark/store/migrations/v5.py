"""Schema 5: studies.margin_pp, .design; study_claims.margin: equivalence and sequential
seeds.

Columns added to existing tables, each with the server default that reads as the
behaviour before it.
"""

VERSION = 5
COLUMNS = [
    ("studies", "margin_pp", "FLOAT"),
    ("studies", "design", "TEXT"),
    ("study_claims", "margin", "FLOAT"),
]
