"""Writes the small numpy-made fixtures under tests/fixtures/io/ (run once; the C++ tests only read them).

Usage: python3 tools/make_io_fixtures.py   (needs numpy)
"""
import os

import numpy as np

out = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "io")
os.makedirs(out, exist_ok=True)
np.save(os.path.join(out, "f4_2x3.npy"), np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5)
np.save(os.path.join(out, "u1_4.npy"), np.array([0, 1, 128, 255], dtype=np.uint8))
with open(os.path.join(out, "i8_3_v2.npy"), "wb") as f:
    np.lib.format.write_array(f, np.array([-1, 0, 1 << 40], dtype=np.int64), version=(2, 0))
np.save(os.path.join(out, "f8_fortran.npy"), np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)))
np.save(os.path.join(out, "f4_bigendian.npy"), np.arange(3, dtype=">f4"))
mu, sigma = np.array([1.0, 2.0, 3.0]), np.eye(3) * 2
np.savez(os.path.join(out, "savez.npz"), mu=mu, sigma=sigma)
np.savez_compressed(os.path.join(out, "savez_compressed.npz"), mu=mu, sigma=sigma)
