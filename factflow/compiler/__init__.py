"""The compiler: pipeline YAML -> typed config -> validated plan.

`loader` reads YAML keeping every value's position, `config` holds the pydantic models of
the format, `validate` collects every issue in one pass (codes in `codes`), `plan` is what
the runtime, the server and the docs read, and `render` prints reports and plans.
"""
