"""sha256 of a file, read a block at a time: models and imported weights are identified by it."""
import hashlib


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
