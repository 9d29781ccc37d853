//! The catalog: every title a bundle can recommend, with the metadata shown in a row.
//!
//! Items keep the ids of the training data (MovieLens item ids for the default bundle); the
//! catalog maps them to dense positions `0..len()` that every per-item array of a bundle is
//! indexed by. Genres are named once and referenced by index.
//!
//! ```
//! use edgerec::catalog::{Catalog, Item};
//! let catalog = Catalog::new(
//!     vec!["Comedy".into(), "Drama".into()],
//!     vec![Item::new(1, "Toy Story", Some(1995), vec![0])],
//! )?;
//! assert_eq!(catalog.position(1), Some(0));
//! assert_eq!(catalog.genre_names(&catalog.items()[0]), vec!["Comedy"]);
//! # Ok::<(), edgerec::BundleError>(())
//! ```

use std::collections::{HashMap, HashSet};

use crate::error::BundleError;

/// Most genres a catalog may name (a genre index is a `u16`).
pub const MAX_GENRES: usize = u16::MAX as usize;

/// One title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The id used by the data the model was trained on; unique in a catalog.
    pub id: u32,
    /// Display title.
    pub title: String,
    /// Release year, when known.
    pub year: Option<u16>,
    /// Indices into [`Catalog::genres`], ascending and unique.
    pub genres: Vec<u16>,
}

impl Item {
    /// Makes an item; genre indices are sorted and de-duplicated.
    pub fn new(id: u32, title: impl Into<String>, year: Option<u16>, mut genres: Vec<u16>) -> Item {
        genres.sort_unstable();
        genres.dedup();
        Item {
            id,
            title: title.into(),
            year,
            genres,
        }
    }

    /// `"Title (Year)"`, or the title alone when the year is unknown.
    pub fn display_title(&self) -> String {
        match self.year {
            Some(y) => format!("{} ({y})", self.title),
            None => self.title.clone(),
        }
    }
}

/// The list of titles, addressable by id and by dense position.
#[derive(Debug, Clone)]
pub struct Catalog {
    genres: Vec<String>,
    items: Vec<Item>,
    positions: HashMap<u32, u32>,
}

impl PartialEq for Catalog {
    fn eq(&self, other: &Self) -> bool {
        self.genres == other.genres && self.items == other.items
    }
}

impl Catalog {
    /// Builds a catalog. Fails if an id repeats, a genre index is out of range, a genre name
    /// repeats or is empty, or there are more than `u32::MAX` items.
    pub fn new(genres: Vec<String>, items: Vec<Item>) -> Result<Catalog, BundleError> {
        let bad = |reason: String| BundleError::Malformed {
            what: "CATL".into(),
            reason,
        };
        if genres.len() > MAX_GENRES {
            return Err(bad(format!(
                "{} genres, at most {MAX_GENRES}",
                genres.len()
            )));
        }
        let mut seen = HashSet::with_capacity(genres.len());
        for g in &genres {
            if g.is_empty() || !seen.insert(g.as_str()) {
                return Err(bad(format!("genre name {g:?} is empty or repeated")));
            }
        }
        if u32::try_from(items.len()).is_err() {
            return Err(bad("too many items".into()));
        }
        let mut positions = HashMap::with_capacity(items.len());
        for (pos, item) in items.iter().enumerate() {
            if positions.insert(item.id, pos as u32).is_some() {
                return Err(bad(format!("item id {} appears twice", item.id)));
            }
            if let Some(&g) = item.genres.iter().find(|&&g| g as usize >= genres.len()) {
                return Err(bad(format!("item {} has unknown genre index {g}", item.id)));
            }
            if item.genres.windows(2).any(|w| w[0] >= w[1]) {
                return Err(bad(format!(
                    "item {} genres are not sorted and unique",
                    item.id
                )));
            }
        }
        Ok(Catalog {
            genres,
            items,
            positions,
        })
    }

    /// Genre names, indexed by genre index.
    pub fn genres(&self) -> &[String] {
        &self.genres
    }

    /// Items in position order.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when the catalog has no items.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Dense position of an item id, if the catalog has it. O(1).
    pub fn position(&self, id: u32) -> Option<usize> {
        self.positions.get(&id).map(|&p| p as usize)
    }

    /// Index of a genre by exact name. O(genres).
    pub fn genre_index(&self, name: &str) -> Option<usize> {
        self.genres.iter().position(|g| g == name)
    }

    /// The genre names of an item, in index order.
    pub fn genre_names(&self, item: &Item) -> Vec<&str> {
        item.genres
            .iter()
            .map(|&g| self.genres[g as usize].as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_ids_and_bad_genres_are_refused() {
        let g = vec!["A".to_string()];
        let dup = vec![
            Item::new(1, "x", None, vec![]),
            Item::new(1, "y", None, vec![]),
        ];
        assert!(Catalog::new(g.clone(), dup).is_err());
        assert!(Catalog::new(g.clone(), vec![Item::new(1, "x", None, vec![3])]).is_err());
        assert!(Catalog::new(vec!["A".into(), "A".into()], vec![]).is_err());
        assert!(Catalog::new(g, vec![Item::new(1, "x", None, vec![0, 0])]).is_ok());
    }
}
