//! The user stage: what the candidate sources read of the local state at request time.
//!
//! The history is the state's finished plays (above [`WATCHED_ABOVE`](crate::features::WATCHED_ABOVE)
//! of the title) that started before the request, oldest first. With a two-tower model, the
//! bundle's user tower embeds that history, the request's search tokens and
//! [`two_tower_dense`] of the profile at the request's local time.
//!
//! ```
//! use edgerec::context::{Context, Device};
//! use edgerec::model::Model;
//! use edgerec::stages::user;
//! use edgerec::state::UserState;
//! # let bytes = edgerec::test_support::tiny_contents_for_device().encode();
//! let model = Model::from_bytes(&bytes)?;
//! let mut state = UserState::new();
//! state.record_play(10, 1_000, 1.0)?;
//! state.record_play(20, 2_000, 0.05)?;                   // abandoned: not history
//! let q = user::query(&model, &state, &Context::new(Device::Tv, 90_000, 0)?, &[])?;
//! assert_eq!(q.history, vec![10]);
//! assert_eq!(q.two_tower.map(|v| v.len()), Some(2));     // the tiny tower's width
//! # Ok::<(), edgerec::Error>(())
//! ```

use crate::context::Context;
use crate::error::Result;
use crate::model::Model;
use crate::state::UserState;
use crate::tower::{UserInput, two_tower_dense};

/// The user as the candidate sources see them.
#[derive(Debug, Clone, PartialEq)]
pub struct UserQuery {
    /// Item ids of finished plays before the request, oldest first (repeats kept).
    pub history: Vec<u32>,
    /// The two-tower user vector, when the model has a user tower.
    pub two_tower: Option<Vec<f32>>,
}

/// The user stage for `state` at `ctx` with the request's search tokens (oldest first).
///
/// Errors: only those of [`UserTower::embed_one`](crate::tower::UserTower::embed_one), which
/// the model's load-time checks make unreachable for valid states.
///
/// Cost: O(plays) plus one user-tower run.
pub fn query(
    model: &Model,
    state: &UserState,
    ctx: &Context,
    searches: &[String],
) -> Result<UserQuery> {
    let time = ctx.timestamp();
    let history: Vec<u32> = state
        .plays()
        .iter()
        .filter(|p| p.finished() && p.started < time)
        .map(|p| p.item)
        .collect();
    let c = model.contents();
    let two_tower = match (model.tower(), &c.two_tower) {
        (Some(tower), Some(t)) => {
            let settings = state.settings();
            let input = UserInput {
                history: history
                    .iter()
                    .filter_map(|&id| c.catalog.position(id))
                    .map(|p| p as u32)
                    .collect(),
                searches: t.search_ids(searches),
                dense: two_tower_dense(
                    settings.age().unwrap_or(0),
                    settings.gender(),
                    ctx.utc_offset_minutes(),
                    time,
                ),
            };
            Some(tower.embed_one(&input)?)
        }
        _ => None,
    };
    Ok(UserQuery { history, two_tower })
}
