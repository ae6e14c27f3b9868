"""Kernels never compute on misaligned memory.

A chunk that reaches a worker by serialisation (``da.from_array(X).persist()``
in a notebook, a NumPy array inside a graph, a chunk moved between workers)
is often a view at an address that is not a multiple of its item size:
``X.flags.aligned`` is False. NumPy then does not hand the product to BLAS
but runs its own generic loop: ``X.T @ r`` on a 250,000 x 50 float64 chunk
took 0.076 s instead of 0.0054 s on an aligned copy (14x).

Two remedies, chosen by measuring one 250,000 x 50 chunk on one thread
(aligned gradient 9.0 ms; misaligned in place 19.9 ms; realigned block by
block 9.5 ms; the whole chunk copied first 27 ms):

* kernels that already walk their chunk in cache-sized row blocks (and
  prediction) copy each misaligned block into one aligned scratch buffer
  (:func:`aligned_blocks`): the copy is read from memory once and stays in
  cache for the products, and never holds a second copy of the chunk, so a
  user's persisted data is not doubled either;
* kernels that take a chunk whole (column-sharded products, local SGD) and
  small vectors (``y``, weights) take :func:`aligned`, a copy only when the
  memory is misaligned.
"""

from __future__ import annotations

import numpy as np

from .._data import is_sparse, scipy_sparse

__all__ = ["aligned", "aligned_blocks", "as_csr", "is_sparse", "row_blocks",
           "sparse_row_blocks", "BLOCK_BYTES"]

#: Rows are processed in blocks of about this many bytes of X, so that each
#: block stays in cache while the margin, the gradient and the Hessian are
#: computed from it: X is read from memory once per pass, not once per product.
BLOCK_BYTES = 2**20


def aligned(a):
    """``a`` itself when NumPy can hand it to BLAS, else an aligned C-ordered copy.

    ``None`` and non-arrays pass through unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> raw = np.zeros(8 * 10 + 4, dtype=np.uint8)
    >>> X = np.frombuffer(raw[4:].data, dtype=np.float64).reshape(5, 2)  # misaligned view
    >>> X.flags.aligned, aligned(X).flags.aligned
    (False, True)
    >>> Y = np.ones((5, 2))
    >>> aligned(Y) is Y
    True
    """
    if not isinstance(a, np.ndarray) or a.flags.aligned:
        return a
    return np.array(a, order="C", copy=True)


def rows_per_block(n_features, itemsize):
    """Rows in one block of about :data:`BLOCK_BYTES`."""
    return max(1, BLOCK_BYTES // max(1, n_features * itemsize))


def row_blocks(X):
    """Slices of about ``BLOCK_BYTES`` of rows of ``X``."""
    n = X.shape[0]
    rows = rows_per_block(X.shape[1], X.itemsize)
    return [slice(a, min(a + rows, n)) for a in range(0, n, rows)]


def as_csr(X):
    """A sparse chunk as a SciPy CSR matrix (or array) whose arrays BLAS-free kernels can read.

    CSR input is returned as it is (same object, so no copy and its class is
    kept) unless one of its arrays is misaligned; then a CSR of the same
    class over aligned copies of the arrays is returned. Other sparse
    formats are converted (O(nnz), never densified).
    """
    import scipy.sparse as sp

    X = scipy_sparse(X)
    if X.format != "csr":
        X = X.tocsr()
    parts = (X.data, X.indices, X.indptr)
    if all(a.flags.aligned for a in parts):
        return X
    if isinstance(X, sp.sparray):
        return type(X)(tuple(aligned(a) for a in parts), shape=X.shape)
    return sp.csr_matrix(tuple(aligned(a) for a in parts), shape=X.shape)


#: Rows per sparse block at most, whatever their nonzeros: the per-row
#: vectors of a block (margins, gradients, curvatures) stay about BLOCK_BYTES.
SPARSE_MAX_BLOCK_ROWS = BLOCK_BYTES // 8


def sparse_row_blocks(X):
    """Row slices of the CSR ``X`` holding about ``BLOCK_BYTES`` of nonzeros each.

    Cut by ``indptr``: a row with more nonzeros than a block gets a block
    of its own.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> sparse_row_blocks(sp.eye(5, format="csr"))
    [slice(0, 5, None)]
    """
    n = X.shape[0]
    per_nonzero = X.data.itemsize + X.indices.itemsize
    target = max(1, BLOCK_BYTES // per_nonzero)
    indptr = X.indptr
    blocks, start = [], 0
    while start < n:
        # The last row end whose nonzeros since ``start`` fit the target.
        stop = int(np.searchsorted(indptr, indptr[start] + target, side="right")) - 1
        stop = min(max(stop, start + 1), start + SPARSE_MAX_BLOCK_ROWS, n)
        blocks.append(slice(start, stop))
        start = stop
    return blocks


def _sparse_blocks(X):
    X = as_csr(X)
    blocks = sparse_row_blocks(X)
    if len(blocks) == 1:  # the whole chunk: no slice, no copy
        yield 0, blocks[0], X
        return
    for number, block in enumerate(blocks):
        yield number, block, X[block]


def aligned_blocks(X):
    """``(number, slice, block)`` per row block of ``X``, each block aligned.

    An aligned ``X`` yields views (no copy). A misaligned one yields its
    blocks copied into one reused scratch buffer: a block is valid only until
    the next one is produced, so callers must not keep it.

    Examples
    --------
    >>> import numpy as np
    >>> raw = np.zeros(8 * 6 + 4, dtype=np.uint8)
    >>> X = np.frombuffer(raw[4:].data, dtype=np.float64).reshape(3, 2)
    >>> [(n, b.flags.aligned) for n, _, b in aligned_blocks(X)]
    [(0, True)]

    A sparse ``X`` yields CSR row blocks (:func:`sparse_row_blocks`; each a
    copy of its rows' nonzeros, or the chunk itself when it is one block).
    """
    if is_sparse(X):
        yield from _sparse_blocks(X)
        return
    blocks = row_blocks(X)
    if X.flags.aligned:
        for number, block in enumerate(blocks):
            yield number, block, X[block]
        return
    scratch = np.empty((blocks[0].stop - blocks[0].start if blocks else 0,) + X.shape[1:],
                       dtype=X.dtype)
    for number, block in enumerate(blocks):
        out = scratch[: block.stop - block.start]
        np.copyto(out, X[block])
        yield number, block, out
