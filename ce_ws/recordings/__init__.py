"""Recordings of runs as asciicast v2 files: `asciicast.py` writes one while the
run goes, `store.py` names, keeps, finds and expires them."""
