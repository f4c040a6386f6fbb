"""Batch runs: a Parquet manifest of shots, processed one Ray task per shot.

``manifest`` validates the manifest, ``storage`` hides local paths vs object stores behind fsspec,
``shot_task`` is the per-shot Ray task, ``runner`` is the driver and ``results`` the run report.
"""
