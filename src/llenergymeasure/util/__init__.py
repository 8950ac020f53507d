"""Small helpers both wings use (host and harness): standard library only.

Imports neither wing, nor an ML framework, docker or typer (an import-linter
contract in pyproject.toml), so the harness and the orchestrator share one copy.
"""
