"""Bits: packed attribute bits and the nearest-class search of PPAS step 2.

Step 1, randomised response on the editable bits, is in :func:`.selection.select_attributes`
with the flip probability and checks of :mod:`privface.privmetrics.dp`.
"""

from __future__ import annotations


import numpy as np


# Bytes of temporaries one chunk of the face-by-class distance matrix may use.
# Bytes of temporaries one chunk of the face-by-class distance matrix may use.
_CHUNK_BYTES = 1 << 23
# Uniform draws per chunk of the randomised response.
DP_CHUNK_DRAWS = 1 << 22


# --------------------------------------------------------------------------- bit packing


def _popcount(words: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (np.bitwise_count on numpy >= 2, a 16-bit lookup table otherwise)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words)
    halves = np.ascontiguousarray(words).view(np.uint16).reshape(words.shape + (4,))
    return _POP16[halves].sum(axis=-1, dtype=np.uint8)


_POP16 = np.array([bin(i).count("1") for i in range(1 << 16)], dtype=np.uint8)


def pack(bits: np.ndarray) -> np.ndarray:
    """Pack an (n, q) boolean matrix into (n, ceil(q / 64)) uint64 words, bit j in word j // 64."""
    n, q = bits.shape
    words = max(1, -(-q // 64))
    packed = np.packbits(bits, axis=1, bitorder="little")
    out = np.zeros((n, words * 8), dtype=np.uint8)
    out[:, :packed.shape[1]] = packed
    return out.view("<u8").astype(np.uint64, copy=False)


def unpack(words: np.ndarray, q: int) -> np.ndarray:
    """Inverse of :func:`pack`: (n, W) uint64 to an (n, q) boolean matrix."""
    n, n_words = words.shape
    as_bytes = np.ascontiguousarray(words.astype("<u8", copy=False)).view(np.uint8)
    as_bytes = as_bytes.reshape(n, n_words * 8)
    return np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :q].astype(bool)


def mask_words(positions: np.ndarray, q: int) -> np.ndarray:
    """uint64 words with the bits at ``positions`` set, shape (W,)."""
    bits = np.zeros((1, q), dtype=bool)
    bits[0, positions] = True
    return pack(bits)[0]


def row_ids(*arrays: np.ndarray) -> list[np.ndarray]:
    """Joint integer ids for the rows of several (n_i, W) word arrays (equal rows, equal ids)."""
    stacked = np.concatenate(arrays, axis=0)
    if stacked.shape[1] == 1:
        _, inv = np.unique(stacked[:, 0], return_inverse=True)
    else:
        _, inv = np.unique(stacked, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    return np.split(inv, np.cumsum([len(a) for a in arrays])[:-1])


def _nearest(noisy: np.ndarray, classes: np.ndarray, a_mask: np.ndarray, n_mask: np.ndarray,
             q: int, tie_u: np.ndarray) -> np.ndarray:
    """For each noisy vector, the index of a nearest class (Hamming over A) that agrees outside A.

    Equal noisy vectors are matched once; the (vectors x classes) distance matrix is built in
    chunks that fit :data:`_CHUNK_BYTES`, in buffers reused from chunk to chunk. A distance is
    "infinite" (the dtype's maximum) where the class differs from the vector outside A. Among the
    nearest classes of a vector, each face takes the ``floor(u * ties)``-th with its own uniform
    ``u``: a uniform choice, face by face.
    """
    uniq, inv = _unique_rows(noisy)
    n_classes = len(classes)
    n_words = classes.shape[1]
    dist_dtype = np.uint8 if q < 255 else np.uint16 if q < 65535 else np.uint32
    big = dist_dtype(np.iinfo(dist_dtype).max)
    # Bits outside the QIs are 0 in every vector, so the XOR needs no mask where A is every QI.
    valid = mask_words(np.arange(q), q)
    need_and = [bool(a_mask[w]) and a_mask[w] != valid[w] for w in range(n_words)]
    check = [bool(n_mask[w]) for w in range(n_words)]
    order = np.argsort(inv, kind="stable")
    sorted_inv = inv[order]
    out = np.full(len(noisy), -1, dtype=np.int64)
    itemsize = np.dtype(dist_dtype).itemsize
    per_row = n_classes * (8 + 2 * itemsize + 2)
    step = int(min(len(uniq), max(1, _CHUNK_BYTES // per_row)))
    xor_buf = np.empty((step, n_classes), dtype=np.uint64)
    pop_buf = np.empty((step, n_classes), dtype=np.uint8)
    # One word with uint8 distances: the popcount is the distance, no sum over words needed.
    accumulate = n_words > 1 or itemsize > 1
    dist_buf = np.empty((step, n_classes), dtype=dist_dtype) if accumulate else pop_buf
    tied_buf = np.empty((step, n_classes), dtype=bool)
    out_buf = np.empty((step, n_classes), dtype=bool) if any(check) else None
    for start in range(0, len(uniq), step):  # a loop over chunks of distinct vectors
        stop = min(len(uniq), start + step)
        m = stop - start
        block = uniq[start:stop]
        dist = dist_buf[:m]
        if accumulate or not a_mask[0]:
            dist[...] = 0
        outside = out_buf[:m] if out_buf is not None else None
        if outside is not None:
            outside[...] = False
        for w in range(n_words):  # a loop over the (one or few) 64-bit words
            x = np.bitwise_xor(block[:, w, None], classes[None, :, w], out=xor_buf[:m])
            if check[w]:
                outside |= np.bitwise_and(x, n_mask[w]) != 0
            if not a_mask[w]:
                continue
            if need_and[w]:
                np.bitwise_and(x, a_mask[w], out=x)
            pop = _popcount_into(x, pop_buf[:m])
            if accumulate:
                np.add(dist, pop, out=dist, casting="unsafe")
        if outside is not None:
            np.copyto(dist, big, where=outside)
        best = dist.min(axis=1)
        tied = np.equal(dist, best[:, None], out=tied_buf[:m])
        if (best == big).any():
            tied &= (best < big)[:, None]
        ties = np.count_nonzero(tied, axis=1)
        flat = np.flatnonzero(tied)
        offset = np.cumsum(ties) - ties
        lo, hi = np.searchsorted(sorted_inv, [start, stop])
        faces = order[lo:hi]
        row = inv[faces] - start
        found = ties[row] > 0
        faces, row = faces[found], row[found]
        n_tied = ties[row]
        pick = np.minimum((tie_u[faces] * n_tied).astype(np.int64), n_tied - 1)
        out[faces] = flat[offset[row] + pick] - row * n_classes
    return out


def _popcount_into(words: np.ndarray, out: np.ndarray) -> np.ndarray:
    """:func:`_popcount` written into a uint8 buffer of the same shape."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words, out=out)
    out[...] = _popcount(words)
    return out


def _unique_rows(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a (n, W) word array and the row of each input."""
    if words.shape[1] == 1:
        uniq, inv = np.unique(words[:, 0], return_inverse=True)
        return uniq[:, None], inv.reshape(-1)
    uniq, inv = np.unique(words, axis=0, return_inverse=True)
    return uniq, inv.reshape(-1)
