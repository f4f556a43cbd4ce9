"""Pipeline specs: pydantic models and the YAML loader. Imports no Spark."""

from pipelines.spec.loader import json_schema, load_spec, spec_from_dict, spec_hash
from pipelines.spec.models import PipelineSpec

__all__ = ["PipelineSpec", "json_schema", "load_spec", "spec_from_dict", "spec_hash"]
