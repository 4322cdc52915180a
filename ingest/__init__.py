"""Files in, chunks out: detect, load, chunk, and sync a file tree into a KnowledgeBase.

Entry point: `zhiku.ingest.pipeline.ingest_paths(kb, paths, IngestOptions(...))`.
Stages: scan (scan.py) -> plan against the store (sync.py) -> parse in worker
processes (pool.py, parse.py, detect.py, loaders.py, pdf.py, chunking.py) ->
embed and write, overlapped (pipeline.py). offline.py keeps `unstructured`
from touching the network.
"""
