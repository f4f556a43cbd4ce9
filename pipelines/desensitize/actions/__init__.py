"""One module per column action kind: its spec model and its operator.

Adding an action means adding a module here (see :mod:`pipelines.desensitize.operator`);
:mod:`pipelines.desensitize.registry` imports every module of this package.
"""
