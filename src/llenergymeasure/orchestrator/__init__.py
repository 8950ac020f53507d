"""Host side: CLI, YAML loading, user config, pre-flight, runners, study loop, display.

Never imports the harness or an ML framework; heavy clients (docker, pynvml,
huggingface_hub, pyarrow) are imported lazily where they are used.
"""
