"""Evaluation on a Ray cluster: `python -m seggallery eval --ray [local|auto|ADDRESS]`.

Optional (requirements-ray.txt): this package is the only one that imports ray, and nothing outside it
imports it except the eval command, and only when --ray is given. connect.py joins or starts a cluster,
workers.py holds the actors (one per model per GPU or CPU slot), stream.py feeds them the photos and writes
each finished pair into the same progress.jsonl as the single-machine run.
"""
