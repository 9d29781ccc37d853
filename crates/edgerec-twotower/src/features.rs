//! Validation and packing of user and item features into padded batches.
//!
//! One packing function serves training, the candle reference forward pass and the ONNX runner,
//! so truncation and mean weights are identical everywhere.

use crate::{Error, Shapes, UserInput};

/// The most recent `max` entries of an oldest-first list.
pub(crate) fn recent(xs: &[u32], max: usize) -> &[u32] {
    &xs[xs.len().saturating_sub(max)..]
}

/// A batch of users as padded, row-major arrays.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PackedUsers {
    /// Rows.
    pub n: usize,
    /// Padded history length (>= 1).
    pub l: usize,
    /// `n × l` item ids, 0 for padding.
    pub history_ids: Vec<u32>,
    /// `n × l` weights: `1/len` for real entries, 0 for padding.
    pub history_weights: Vec<f32>,
    /// Padded search length (>= 1).
    pub s: usize,
    /// `n × s` search-token ids, 0 for padding.
    pub search_ids: Vec<u32>,
    /// `n × s` weights.
    pub search_weights: Vec<f32>,
    /// `n × n_dense` dense features.
    pub dense: Vec<f32>,
}

/// Pads lists (already truncated) to a common length `>= 1` with mean weights.
pub(crate) fn pad_mean(lists: &[&[u32]]) -> (usize, Vec<u32>, Vec<f32>) {
    let width = lists.iter().map(|l| l.len()).max().unwrap_or(0).max(1);
    let mut ids = vec![0u32; lists.len() * width];
    let mut weights = vec![0f32; lists.len() * width];
    for (row, list) in lists.iter().enumerate() {
        if list.is_empty() {
            continue;
        }
        let w = 1.0f32 / list.len() as f32;
        let start = row * width;
        ids[start..start + list.len()].copy_from_slice(list);
        weights[start..start + list.len()].fill(w);
    }
    (width, ids, weights)
}

/// Packs users given as `(history, searches, dense)`, truncating to the model's limits. Inputs
/// must have been validated (dense width).
pub(crate) fn pack_users<'a>(
    rows: impl Iterator<Item = (&'a [u32], &'a [u32], &'a [f32])>,
    shapes: &Shapes,
) -> PackedUsers {
    let mut histories = Vec::new();
    let mut searches = Vec::new();
    let mut dense = Vec::new();
    for (h, s, d) in rows {
        histories.push(recent(h, shapes.max_history));
        searches.push(recent(s, shapes.max_searches));
        dense.extend_from_slice(d);
    }
    let (l, history_ids, history_weights) = pad_mean(&histories);
    let (s, search_ids, search_weights) = pad_mean(&searches);
    PackedUsers {
        n: histories.len(),
        l,
        history_ids,
        history_weights,
        s,
        search_ids,
        search_weights,
        dense,
    }
}

/// Checks one user's features against the model's sizes.
pub(crate) fn check_user(
    shapes: &Shapes,
    history: &[u32],
    searches: &[u32],
    dense: &[f32],
) -> Result<(), String> {
    if let Some(&id) = history.iter().find(|&&id| id as usize >= shapes.n_items) {
        return Err(format!(
            "history item {id} out of range (n_items = {})",
            shapes.n_items
        ));
    }
    if let Some(&id) = searches
        .iter()
        .find(|&&id| id as usize >= shapes.n_search_tokens)
    {
        return Err(format!(
            "search token {id} out of range (n_search_tokens = {})",
            shapes.n_search_tokens
        ));
    }
    if dense.len() != shapes.n_dense {
        return Err(format!(
            "dense has {} values, the model expects {}",
            dense.len(),
            shapes.n_dense
        ));
    }
    if let Some(pos) = dense.iter().position(|v| !v.is_finite()) {
        return Err(format!("dense[{pos}] is not finite ({})", dense[pos]));
    }
    Ok(())
}

/// [`check_user`] for a [`UserInput`], as an [`Error::InvalidInput`].
pub(crate) fn validate_input(shapes: &Shapes, input: &UserInput, row: usize) -> Result<(), Error> {
    check_user(shapes, &input.history, &input.searches, &input.dense)
        .map_err(|e| Error::InvalidInput(format!("input {row}: {e}")))
}

/// A batch of items' content tokens, padded with mean weights.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PackedItems {
    /// Rows.
    pub n: usize,
    /// Item ids, one per row.
    pub ids: Vec<u32>,
    /// Padded token length (>= 1).
    pub t: usize,
    /// `n × t` token ids, 0 for padding.
    pub token_ids: Vec<u32>,
    /// `n × t` weights.
    pub token_weights: Vec<f32>,
}

/// Packs the content tokens of `items` (validated ids).
pub(crate) fn pack_items(items: &[u32], item_tokens: &[Vec<u32>]) -> PackedItems {
    let lists: Vec<&[u32]> = items
        .iter()
        .map(|&i| &item_tokens[i as usize][..])
        .collect();
    let (t, token_ids, token_weights) = pad_mean(&lists);
    PackedItems {
        n: items.len(),
        ids: items.to_vec(),
        t,
        token_ids,
        token_weights,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_the_most_recent_and_weights_are_means() {
        assert_eq!(recent(&[1, 2, 3, 4], 2), &[3, 4]);
        assert_eq!(recent(&[1, 2], 5), &[1, 2]);
        assert!(recent(&[1, 2], 0).is_empty());
        let (w, ids, weights) = pad_mean(&[&[5, 6], &[], &[7]]);
        assert_eq!(w, 2);
        assert_eq!(ids, vec![5, 6, 0, 0, 7, 0]);
        assert_eq!(weights, vec![0.5, 0.5, 0.0, 0.0, 1.0, 0.0]);
        let (w, ids, weights) = pad_mean(&[&[], &[]]);
        assert_eq!((w, ids, weights), (1, vec![0, 0], vec![0.0, 0.0]));
    }
}
