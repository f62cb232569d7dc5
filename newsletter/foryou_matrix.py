"""The matrix arithmetic of "For you", the same for sparse BM25 rows and dense embeddings.

A batch of readers is a ``Queries``: unit rows of their text, of the mean of their liked
papers, and of every liked paper; scoring is row-wise dot products and matrix products
on those, whichever space they are in (``newsletter.foryou`` chooses it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

#: A scipy sparse CSR matrix (the lexical space) or a dense numpy array (embeddings).
Matrix: TypeAlias = Any
#: Vector entries gathered at once to find the liked paper nearest each pick.
GATHER_ENTRIES = 4_000_000


def unit_rows(matrix: Any) -> Any:
    """``matrix`` with each non-zero row scaled to length 1 (sparse or dense)."""
    import numpy as np
    from scipy import sparse

    if sparse.issparse(matrix):
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sparse.csr_matrix(sparse.diags(scale.astype(np.float32)) @ matrix)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def row_dots(left: Any, right: Any, li: NDArray[np.intp], ri: NDArray[np.intp]) -> Any:
    """``left[li[n]] . right[ri[n]]`` for every n, in one vectorised step."""
    import numpy as np
    from scipy import sparse

    if sparse.issparse(left):
        return np.asarray(left[li].multiply(right[ri]).sum(axis=1)).ravel()
    return np.einsum("ij,ij->i", left[li], right[ri])


def nearest(
    space: Queries, papers: Any, reader_at: NDArray[np.intp], paper_at: NDArray[np.intp]
) -> NDArray[np.intp]:
    """For each (reader, paper) pick, the row of the reader's liked paper closest to it.

    Every (pick, liked paper of its reader) pair is scored in one vectorised row-dot and
    the best of each pick's pairs taken with a sort, in slices of about GATHER_ENTRIES
    vector entries. Picks of readers without liked papers get -1.
    """
    import numpy as np

    counts = space.starts[reader_at + 1] - space.starts[reader_at]
    out = np.full(len(reader_at), -1, dtype=np.intp)
    width = max(
        1, papers.shape[1] if not hasattr(papers, "nnz") else papers.nnz // max(1, papers.shape[0])
    )
    per_slice = max(1, GATHER_ENTRIES // width)
    start = 0
    while start < len(reader_at):
        total = np.cumsum(counts[start:])
        end = start + max(1, int(np.searchsorted(total, per_slice, side="right")))
        picks = np.arange(start, end)[counts[start:end] > 0]
        start = end
        if not len(picks):
            continue
        sizes = counts[picks]
        pair = np.repeat(np.arange(len(picks)), sizes)
        first = np.repeat(np.cumsum(sizes) - sizes, sizes)
        rows = space.starts[reader_at[picks]][pair] + np.arange(len(pair)) - first
        sims = row_dots(space.liked, papers, rows, paper_at[picks][pair])
        order = np.lexsort((-sims, pair))
        out[picks] = rows[order[np.cumsum(sizes) - sizes]]
    return out


@dataclass(frozen=True)
class Queries:
    """A batch of readers as matrices: text rows, mean-of-liked rows, every liked row."""

    ids: list[int]
    text: Matrix  # readers x dims, unit rows (zero: no text)
    mean: Matrix  # readers x dims, unit rows (zero: no liked paper)
    liked: Matrix  # all liked papers x dims, unit rows
    starts: NDArray[np.intp]  # reader n's liked rows are starts[n]:starts[n + 1]
    titles: list[str]  # title of each liked row
    words: list[str]  # each reader's free text
