"""For you: each reader's best papers of the day, ranked against their own interests.

Pure: papers, interests and (optionally) embedding vectors in, picks out; no database,
no network. The send builds one ``Day`` (the day's papers as matrices) and asks it for
each batch of readers, so the work is a few matrix products per thousand readers,
never a Python loop over (reader, paper) pairs: a day has ~2,000 papers and a list
100,000 readers.

The offline model is BM25 (``bm25s``): a paper is its title and abstract, a reader's
query is two unit vectors over the day's vocabulary, their free text and the mean of
their liked papers (each paper's title and abstract), so neither a long library nor a
short sentence drowns the other. A paper's score is the BM25 weight of the query's
terms in it; the terms that weigh most are the pick's reason, unless the liked papers
weigh more than the text, in which case the reason names the liked paper closest to
the pick. With embeddings (``vectors``, from NEWSLETTER_EMBEDDING_MODEL) the same
arithmetic runs on dense vectors: cosine similarity as a matrix product.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from newsletter.foryou_matrix import Matrix, Queries, nearest, row_dots, unit_rows
from newsletter.models import Paper
from newsletter.render import paper_url

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from scipy import sparse


#: Picks per reader.
K = 5
#: Matched terms a reason names.
MAX_TERMS = 3
#: Characters of a liked paper's title in a reason ("close to your paper: ...").
NEAR_CHARS = 90
#: Readers scored at once: the dense block of scores is SCORE_ROWS x papers.
SCORE_ROWS = 256


class LikedLike(Protocol):
    """A paper the reader likes (``subscribers.interests.LikedPaper``)."""

    @property
    def title(self) -> str: ...

    @property
    def abstract(self) -> str: ...


class InterestsLike(Protocol):
    """A reader's interests (``subscribers.interests.Interests``)."""

    @property
    def text(self) -> str: ...

    @property
    def papers(self) -> Sequence[LikedLike]: ...


@dataclass(frozen=True)
class Pick:
    """One paper chosen for one reader, with what the mail shows of it and why."""

    paper_id: str
    title: str
    url: str
    byline: str  # "First Author et al."
    category: str  # slug
    reason: str  # "matches: diffusion, protein" / "close to your paper: <title>" (English)
    score: float = 0.0
    #: The reader's words that matched, most weighty first (the block words them per language).
    terms: tuple[str, ...] = ()
    #: The title of the reader's liked paper closest to this one, when liked papers drove it.
    near: str = ""


def paper_text(paper: Paper) -> str:
    """What ranking reads of a paper (and what is embedded): title and abstract."""
    return f"{paper.title}\n\n{paper.abstract}".strip()


def liked_text(liked: LikedLike) -> str:
    """What ranking reads of a liked paper (and what is embedded)."""
    return f"{liked.title}\n\n{liked.abstract}".strip()


def reader_texts(interests: InterestsLike) -> list[str]:
    """Every text of a reader that the embedding path needs a vector for."""
    texts = [interests.text.strip()] if interests.text.strip() else []
    return texts + [liked_text(p) for p in interests.papers]


def _reason(terms: Sequence[str], near: str) -> str:
    if near:
        return f"close to your paper: {near}"
    if terms:
        return "matches: " + ", ".join(terms)
    return "close to your interests"


class Day:
    """One day's papers as matrices, built once and asked for any number of batches.

    ``paper_categories`` maps a paper id to its category slugs (the first shown);
    ``vectors`` maps each ``paper_text`` to its embedding when embeddings are used.
    """

    def __init__(
        self,
        papers: Sequence[Paper],
        paper_categories: Mapping[str, Sequence[str]],
        vectors: Mapping[str, Any] | None = None,
    ) -> None:
        import bm25s
        import numpy as np
        import Stemmer
        from bm25s.tokenization import Tokenizer
        from scipy import sparse

        unique = list({p.arxiv_id: p for p in papers}.values())
        self.papers = unique
        self._urls = [paper_url(p) for p in unique]
        self.categories = [tuple(paper_categories.get(p.arxiv_id, ())) for p in unique]
        slugs = sorted({s for cats in self.categories for s in cats})
        self._slug_index = {s: n for n, s in enumerate(slugs)}
        rows = [n for n, cats in enumerate(self.categories) for _ in cats]
        cols = [self._slug_index[s] for cats in self.categories for s in cats]
        self._membership = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)),
            shape=(len(unique), max(1, len(slugs))),
        )
        # Stems, so "proteins" in a reader's text meets "protein" in an abstract.
        self._tokenizer = Tokenizer(stopwords="en", stemmer=Stemmer.Stemmer("english"))
        ids = self._tokenizer.tokenize(
            [paper_text(p) for p in unique] or [""], show_progress=False, return_as="ids"
        )
        vocab: dict[str, int] = self._tokenizer.get_vocab_dict()
        index = bm25s.BM25()
        index.index((ids, vocab), show_progress=False)
        scores = index.scores
        width = len(scores["indptr"]) - 1
        weights = sparse.csc_matrix(
            (scores["data"], scores["indices"], scores["indptr"]),
            shape=(scores["num_docs"], width),
        )
        self._weights = sparse.csr_matrix(weights[: len(unique)])
        self._empty = vocab.get("")
        self._dims = width
        self._dense: Matrix = None
        if vectors is not None and unique:
            self._dense = unit_rows(
                np.vstack([np.asarray(vectors[paper_text(p)], dtype=np.float32) for p in unique])
            )

    # -- queries ---------------------------------------------------------------------------

    def _terms(self, texts: list[str]) -> sparse.csr_matrix:
        """Unit rows of the day's terms each text contains (words unknown today drop out)."""
        import numpy as np
        from scipy import sparse

        ids = self._tokenizer.tokenize(
            texts, update_vocab=False, show_progress=False, allow_empty=False, return_as="ids"
        )
        rows = [n for n, doc in enumerate(ids) for t in set(doc) if t != self._empty]
        cols = [t for doc in ids for t in set(doc) if t != self._empty]
        binary = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)),
            shape=(len(texts), self._dims),
        )
        return unit_rows(binary)

    def _queries(
        self, interests: Mapping[int, InterestsLike], vectors: Mapping[str, Any] | None
    ) -> tuple[Queries, Queries | None]:
        """The readers as lexical queries, and as embedding queries when vectors are given."""
        import numpy as np
        from scipy import sparse

        ids = sorted(interests)
        texts = [interests[i].text.strip() for i in ids]
        liked = [[liked_text(p) for p in interests[i].papers] for i in ids]
        counts = np.array([len(docs) for docs in liked], dtype=np.intp)
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.intp)
        flat = [doc for docs in liked for doc in docs]
        titles = [p.title for i in ids for p in interests[i].papers]
        owner = np.repeat(np.arange(len(ids)), counts)
        share = np.divide(1.0, counts, out=np.zeros(len(ids)), where=counts > 0)
        mean_of = sparse.csr_matrix(
            (share[owner].astype(np.float32), (owner, np.arange(len(flat)))),
            shape=(len(ids), len(flat)),
        )
        liked_rows = self._terms(flat)
        lexical = Queries(
            ids,
            self._terms(texts),
            unit_rows(sparse.csr_matrix(mean_of @ liked_rows)),
            liked_rows,
            starts,
            titles,
            texts,
        )
        if vectors is None or self._dense is None:
            return lexical, None
        dims = self._dense.shape[1]

        def embedded(docs: list[str]) -> NDArray[np.float32]:
            found = [
                np.asarray(vectors[d], dtype=np.float32) if d else np.zeros(dims, np.float32)
                for d in docs
            ]
            return unit_rows(np.vstack(found)) if found else np.zeros((0, dims), np.float32)

        liked_dense = embedded(flat)
        dense = Queries(
            ids,
            embedded(texts),
            unit_rows(mean_of @ liked_dense),
            liked_dense,
            starts,
            titles,
            texts,
        )
        return lexical, dense

    # -- ranking ---------------------------------------------------------------------------

    def _allowed_mask(
        self, ids: list[int], allowed: Mapping[int, set[str]] | None
    ) -> NDArray[np.bool_] | None:
        """readers x papers: which papers each reader may get (None: every paper)."""
        import numpy as np

        if allowed is None:
            return None
        sets = {frozenset(allowed.get(i, ())) for i in ids}
        rows = {}
        for chosen in sets:
            wanted = np.zeros(self._membership.shape[1], dtype=np.float32)
            wanted[[self._slug_index[s] for s in chosen if s in self._slug_index]] = 1.0
            rows[chosen] = (self._membership @ wanted) > 0
        return np.vstack([rows[frozenset(allowed.get(i, ()))] for i in ids])

    def rank(
        self,
        interests: Mapping[int, InterestsLike],
        allowed: Mapping[int, set[str]] | None = None,
        k: int = K,
        vectors: Mapping[str, Any] | None = None,
    ) -> dict[int, list[Pick]]:
        """Each reader's ``k`` best papers among their ``allowed`` categories (None: all).

        A reader whose interests match nothing today (no paper scores above zero) gets
        an empty list.
        """
        import numpy as np

        if not interests or not self.papers:
            return {i: [] for i in interests}
        lexical, dense = self._queries(interests, vectors)
        space = dense or lexical
        papers = self._dense if dense is not None else self._weights
        mask = self._allowed_mask(lexical.ids, allowed)
        k = min(k, len(self.papers))
        best = np.zeros((len(lexical.ids), k), dtype=np.intp)
        top = np.zeros((len(lexical.ids), k), dtype=np.float32)
        # A few hundred readers at a time: the dense readers x papers block stays small.
        for start in range(0, len(lexical.ids), SCORE_ROWS):
            rows = slice(start, start + SCORE_ROWS)
            product = (space.text[rows] + space.mean[rows]) @ papers.T
            scores = np.asarray(
                product.toarray() if hasattr(product, "toarray") else product, dtype=np.float32
            )
            if mask is not None:
                scores[~mask[rows]] = 0.0
            chosen = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            found = np.take_along_axis(scores, chosen, axis=1)
            order = np.argsort(-found, axis=1, kind="stable")
            best[rows] = np.take_along_axis(chosen, order, axis=1)
            top[rows] = np.take_along_axis(found, order, axis=1)
        reader_at, slot = np.nonzero(top > 0)
        paper_at = best[reader_at, slot]
        return self._picks(
            lexical, space, papers, reader_at, paper_at, top[reader_at, slot], allowed
        )

    def _picks(
        self,
        lexical: Queries,
        space: Queries,
        papers: Any,
        reader_at: NDArray[np.intp],
        paper_at: NDArray[np.intp],
        scores: NDArray[np.float32],
        allowed: Mapping[int, set[str]] | None,
    ) -> dict[int, list[Pick]]:
        """Picks with their reasons: matched terms, or the nearest liked paper when the
        liked papers weigh more than the text in the pick's score."""
        import numpy as np

        from_text = row_dots(space.text, papers, reader_at, paper_at)
        from_liked = row_dots(space.mean, papers, reader_at, paper_at)
        terms = self._matched_terms(lexical, reader_at, paper_at)
        words: dict[int, dict[int, str]] = {}
        by_liked = np.nonzero(from_liked > from_text)[0]
        near = nearest(space, papers, reader_at[by_liked], paper_at[by_liked])
        near_of = {
            int(p): space.titles[int(row)]
            for p, row in zip(by_liked, near, strict=True)
            if row >= 0
        }
        out: dict[int, list[Pick]] = {i: [] for i in lexical.ids}
        for n, (reader, paper) in enumerate(zip(reader_at, paper_at, strict=True)):
            rid, item = lexical.ids[reader], self.papers[paper]
            cats = self.categories[paper]
            mine_cats = allowed.get(rid, set()) if allowed is not None else set(cats)
            category = next((c for c in cats if c in mine_cats), cats[0] if cats else "")
            title = " ".join(near_of.get(n, "").split())
            if len(title) > NEAR_CHARS:
                title = title[: NEAR_CHARS - 1].rstrip() + "…"
            if reader not in words:
                words[reader] = self._surface(lexical.words[reader])
            shown_terms = () if title else tuple(words[reader].get(t, "") for t in terms[n])
            out[rid].append(
                Pick(
                    paper_id=item.arxiv_id,
                    title=item.title,
                    url=self._urls[paper],
                    byline=item.short_authors,
                    category=category,
                    reason=_reason(shown_terms, title),
                    score=float(scores[n]),
                    terms=shown_terms,
                    near=title,
                )
            )
        return out

    def _matched_terms(
        self, lexical: Queries, reader_at: NDArray[np.intp], paper_at: NDArray[np.intp]
    ) -> list[tuple[int, ...]]:
        """Per pick, the terms of the reader's text that weigh most in the paper."""
        import numpy as np
        from scipy import sparse

        shared = sparse.csr_matrix(lexical.text[reader_at].multiply(self._weights[paper_at]))
        shared.eliminate_zeros()
        rows = np.repeat(np.arange(shared.shape[0]), np.diff(shared.indptr))
        order = np.lexsort((-shared.data, rows))
        rank = np.arange(len(order)) - shared.indptr[rows[order]]
        keep = order[rank < MAX_TERMS]
        terms: list[list[int]] = [[] for _ in range(shared.shape[0])]
        for row, col in zip(rows[keep], shared.indices[keep], strict=True):
            terms[row].append(int(col))
        return [tuple(t) for t in terms]

    def _surface(self, text: str) -> dict[int, str]:
        """Term id -> the word the reader wrote for it (the first one), for the reason."""
        known = self._tokenizer.word_to_id
        words: dict[int, str] = {}
        for word in self._tokenizer.splitter(text.lower()):
            if word in known:
                words.setdefault(known[word], word)
        return words


def rank_day(
    papers: Sequence[Paper],
    paper_categories: Mapping[str, Sequence[str]],
    interests: Mapping[int, InterestsLike],
    *,
    allowed: Mapping[int, set[str]] | None,
    k: int = K,
    embeddings: Mapping[str, Any] | None = None,
) -> dict[int, list[Pick]]:
    """Each reader's ``k`` best papers of the day (see ``Day``; one call, one batch)."""
    return Day(papers, paper_categories, embeddings).rank(interests, allowed, k, embeddings)
