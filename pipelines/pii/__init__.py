"""One PII detection engine for free text, used by the output gate, ``scrub`` and discovery.

Layout:
    catalogue   the entities: what each matches, its native screen, its candidate
                pattern, its validator and canonical form, its sources.
    validators  checksum and format validators (python-stdnum, phonenumbers, idna).
    names       first names and surnames (US Census 1990 lists) for PERSON.
    engine      the span finder: candidates, validation, context, overlap resolution
                and rendering (placeholder, token, surrogate, mask). Pure Python.
    native      the screen's Java UDF (``java/``): its jar, built from source by the
                JDK, named after the source's digest.
    spark       the engine on Spark: the native screen mask registered from the
                catalogue, and the confirming pass over candidate rows only (Arrow
                batches), for the gate and ``scrub``.

Every detector is in two parts, the way Presidio's pattern recognizers are (a pattern,
then a validation), but split across engines for speed: a *screen*, regex-free guards
then a Java regex, evaluated in the JVM on every value (one Java UDF for every
entity), and a *confirmation*, the Python pattern plus validator run only on the
values the screen let through. The
screen is built to be a superset of the confirmation (a property test checks it), so
skipping non-candidates never loses a detection.
"""
