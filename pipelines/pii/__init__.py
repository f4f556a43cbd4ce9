"""One PII detection engine for free text, used by the output gate, ``scrub`` and discovery.

Layout:
    catalogue   the entities: what each matches, its native screen, its candidate
                pattern, its validator and canonical form, its sources.
    validators  checksum and format validators (python-stdnum, phonenumbers, idna).
    names       first names and surnames (US Census 1990 lists) for PERSON.
    engine      the span finder: candidates, validation, context, overlap resolution
                and rendering (placeholder, token, surrogate, mask). Pure Python.
    spark       the engine on Spark: the native screens (no Python), and the confirming
                pass over candidate rows only (Arrow batches), for the gate and ``scrub``.

Every detector is in two parts, the way Presidio's pattern recognizers are (a pattern,
then a validation), but split across engines for speed: a *screen*, a Java regex with
cheap guards evaluated natively by Spark on every value, and a *confirmation*, the
Python pattern plus validator run only on the values the screen let through. The
screen is built to be a superset of the confirmation (a property test checks it), so
skipping non-candidates never loses a detection.
"""
