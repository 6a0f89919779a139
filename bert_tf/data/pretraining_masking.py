"""Masked-LM predictions drawn on the host, vectorized over a task's packed sequences with numpy."""
import numpy as np


def num_predictions(lengths, max_predictions, masked_lm_prob):
    """min(P, max(1, round(len * prob))) with round-half-even, as Python's round."""
    return np.minimum(max_predictions, np.maximum(1, np.rint(np.asarray(lengths) * masked_lm_prob))).astype(np.int64)


def mask_instances(ids, lengths, settings, vocab, nrng, continuation=None):
    """Masked-LM predictions for a batch of packed sequences (numpy, vectorized over rows).

    Picks min(P, max(1, round(len * prob))) positions (never [CLS]/[SEP]/padding), in random order
    of whole words when ``do_whole_word_mask`` (a word that would overshoot is skipped), then
    replaces 80% with [MASK], 10% with a random token and keeps 10%. Returns (masked ids,
    positions [N, P], original ids [N, P], weights [N, P] float32). ``continuation`` [N, S] marks
    tokens that continue a word of a pre-segmented corpus; without it "##" pieces do.
    """
    n, seq = ids.shape
    limit = settings.max_predictions_per_seq
    columns = np.arange(seq)
    candidate = (columns < lengths[:, None]) & (columns > 0) & (ids != vocab.sep_id) & (ids != vocab.cls_id)
    if settings.do_whole_word_mask:
        previous = np.zeros_like(candidate)
        previous[:, 1:] = candidate[:, :-1]
        continues = vocab.continuation[ids] if continuation is None else continuation
        starts = candidate & ~(continues & previous)
    else:
        starts = candidate
    target = num_predictions(lengths, limit, settings.masked_lm_prob)
    keys = nrng.random((n, seq))
    keys[~starts] = np.inf
    if settings.do_whole_word_mask:
        order = np.argsort(keys, axis=1, kind="stable")
        # Size of the word beginning at each start: distance to the next start or non-candidate.
        start_index = np.maximum.accumulate(np.where(starts, columns, 0), axis=1)
        group_size = np.zeros((n, seq), np.int64)
        rows = np.broadcast_to(np.arange(n)[:, None], (n, seq))
        np.add.at(group_size, (rows[candidate], start_index[candidate]), 1)
        sizes = np.take_along_axis(group_size, order, axis=1)
        taken = np.zeros((n, seq), bool)
        count = np.zeros(n, np.int64)
        for k in range(seq):
            size = sizes[:, k]
            fits = (size > 0) & (count + size <= target)
            if not fits.any() and not (size > 0).any():
                break
            taken[:, k] = fits
            count += size * fits
        chosen_start = np.zeros((n, seq), bool)
        np.put_along_axis(chosen_start, order, taken, axis=1)
        chosen = candidate & np.take_along_axis(chosen_start, start_index, axis=1)
    else:
        # The `target` smallest keys of each row: compare with the target-th smallest.
        smallest = np.sort(np.partition(keys, limit - 1, axis=1)[:, :limit], axis=1)
        threshold = np.take_along_axis(smallest, (target - 1)[:, None], axis=1)
        chosen = starts & (keys <= threshold)
    # Chosen columns in ascending order per row, left-aligned into [N, P] (at most P per row).
    rows, cols = np.nonzero(chosen)
    counts = chosen.sum(1)
    rank = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    positions = np.zeros((n, limit), np.int64)
    positions[rows, rank] = cols
    valid = np.arange(limit)[None, :] < counts[:, None]
    originals = np.where(valid, np.take_along_axis(ids, positions, axis=1), 0)
    draw = nrng.random((n, limit))
    random_ids = nrng.integers(0, vocab.size, (n, limit))
    replaced = np.where(draw < 0.8, vocab.mask_id, np.where(draw < 0.9, originals, random_ids))
    masked = ids.copy()
    masked[rows, cols] = replaced[rows, rank]
    return masked, positions.astype(np.int64), originals.astype(np.int64), valid.astype(np.float32)

