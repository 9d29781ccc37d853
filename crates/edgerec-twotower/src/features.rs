//! Validation and packing of user and item features into padded batches.
//!
//! One packing function, the device's ([`edgerec::tower`]), serves training, the candle reference
//! forward pass and the ONNX runner, so truncation and mean weights are identical everywhere.

pub(crate) use edgerec::tower::PackedUsers;
use edgerec::tower::pad_mean;

use crate::{Error, Shapes, UserInput};

/// Packs users given as `(history, searches, dense)`, truncating to the model's limits: the
/// device's own packing ([`edgerec::tower::InputShape::pack`]). Inputs must have been validated
/// (dense width).
pub(crate) fn pack_users<'a>(
    rows: impl Iterator<Item = (&'a [u32], &'a [u32], &'a [f32])>,
    shapes: &Shapes,
) -> PackedUsers {
    shapes.input_shape().pack(rows)
}

/// What the core's check says does not fit (the message of its `InvalidArgument`).
fn reason(e: edgerec::Error) -> String {
    match e {
        edgerec::Error::InvalidArgument(m) => m,
        other => other.to_string(),
    }
}

/// Checks one user's features against the model's sizes: the device's own check
/// ([`edgerec::tower::InputShape::check`]).
pub(crate) fn check_user(
    shapes: &Shapes,
    history: &[u32],
    searches: &[u32],
    dense: &[f32],
) -> Result<(), String> {
    shapes
        .input_shape()
        .check(history, searches, dense)
        .map_err(reason)
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
    fn items_pack_with_mean_weights() {
        let tokens = vec![vec![0, 1], vec![], vec![2]];
        let p = pack_items(&[2, 1, 0], &tokens);
        assert_eq!((p.n, p.t), (3, 2));
        assert_eq!(p.ids, vec![2, 1, 0]);
        assert_eq!(p.token_ids, vec![2, 0, 0, 0, 0, 1]);
        assert_eq!(p.token_weights, vec![1.0, 0.0, 0.0, 0.0, 0.5, 0.5]);
    }
}
