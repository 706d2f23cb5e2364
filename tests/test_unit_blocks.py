"""unit_blocks: blocks of columns read in chunks of rows equal the columns of the array."""

import numpy as np

from interpret.scan.unit_blocks import read_block


def test_blocks_of_a_memmap_and_its_views_equal_the_array(tmp_path):
    rng = np.random.default_rng(0)
    acts = rng.standard_normal((1000, 13)).astype(np.float32)
    path = tmp_path / "activations.npy"
    np.save(path, acts)
    mm = np.load(path, mmap_mode="r")
    for j0, j1, rows in ((0, 13, 1000), (2, 9, 64), (12, 13, 7)):
        block = read_block(mm, j0, j1, rows=rows)
        assert block.dtype == np.float32 and block.shape == (j1 - j0, 1000)
        np.testing.assert_array_equal(block, acts[:, j0:j1].T)
    np.testing.assert_array_equal(read_block(mm[333:], 1, 5, rows=100), acts[333:, 1:5].T)
    np.testing.assert_array_equal(read_block(mm[:, 3:10], 0, 7, rows=100), acts[:, 3:10].T)
    as_float64 = read_block(acts.astype(np.float64), 0, 2)
    assert as_float64.dtype == np.float64
    np.testing.assert_array_equal(as_float64, acts[:, :2].T)
