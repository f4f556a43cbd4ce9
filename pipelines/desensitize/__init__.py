"""Column desensitization: one operator per action kind, compiled to native Spark SQL.

Rooms:
    operator   the contract every action implements (spec model + operator), no Spark.
    actions/   one module per action kind (keep, drop, redact, mask, hash, surrogate,
               generalize, date_shift, noise).
    registry   the actions by kind, and the spec's ``columns`` union built from them.
    keyed      HMAC-SHA256 as a Spark expression, key material kept out of plans.
    transform  :func:`with_desensitized`, the stage as a DataFrame -> DataFrame transform.

No Python UDFs: every action compiles to Spark SQL expressions.
"""
