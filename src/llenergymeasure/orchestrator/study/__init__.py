"""Studies: ordering, gaps, baseline cache, manifest checkpoints, failure isolation, resume.

`StudyLoop` (loop.py) is the loop; everything else is a small helper it is
built from. `llenergymeasure.orchestrator.api.run_study` wires them together.
"""
