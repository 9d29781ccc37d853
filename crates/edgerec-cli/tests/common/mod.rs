//! What the CLI's end-to-end tests share: running the binary and writing small worlds in the
//! layout of the recbole copy of MovieLens-100K.

#![allow(dead_code)] // each test file uses its own subset

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `edgerec` with these arguments (no backtrace, so stderr is what a user sees).
pub fn edgerec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgerec"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run edgerec")
}

/// Runs `edgerec`, asserts it succeeded and returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = edgerec(args);
    assert!(
        out.status.success(),
        "edgerec {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `edgerec`, asserts it failed and returns its stderr.
pub fn fails(args: &[&str]) -> String {
    let out = edgerec(args);
    assert!(!out.status.success(), "edgerec {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A temp path as an argument.
pub fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// The genres of [`PlantedGenres`] worlds: title `i` is of genre `i % 3`.
pub const GENRES: [&str; 3] = ["Comedy", "Horror", "Western"];

/// A MovieLens-like world (no impressions, every rating a full play) with a planted signal:
/// `users` users each rate `per_user` of 90 titles, four in five of their favourite genre
/// (`user % 3`) and the rest among the catalog's first twelve (popular with everyone), in turns
/// `step` seconds apart, so a temporal split leaves everyone a past and a future. `seed` orders
/// each user's titles.
pub struct PlantedGenres {
    pub users: u32,
    pub per_user: usize,
    pub step: u64,
    pub seed: u64,
}

impl PlantedGenres {
    pub const ITEMS: u32 = 90;

    pub fn write(&self, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        let items_n = Self::ITEMS;
        let mut items = String::from(
            "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n",
        );
        for i in 1..=items_n {
            let genre = GENRES[(i % 3) as usize];
            let _ = writeln!(items, "{i}\tTitle {i}\t{}\t{genre}", 1970 + i % 20);
        }
        let mut users = String::from(
            "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n",
        );
        for u in 1..=self.users {
            let _ = writeln!(users, "{u}\t{}\tM\tother\t1{u:04}", 18 + u % 40);
        }
        // A small LCG: each user's titles in a user-specific order.
        let mut state = self.seed;
        let mut next = |n: u32| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) % u64::from(n)) as u32
        };
        let mut lists: Vec<Vec<u32>> = Vec::new();
        for u in 1..=self.users {
            let fav = u % 3;
            let mut list: Vec<u32> = Vec::new();
            while list.len() < self.per_user {
                let i = if next(5) == 0 {
                    1 + next(12)
                } else {
                    3 * next(items_n / 3) + fav + if fav == 0 { 3 } else { 0 }
                };
                if (1..=items_n).contains(&i) && !list.contains(&i) {
                    list.push(i);
                }
            }
            lists.push(list);
        }
        let mut inter =
            String::from("user_id:token\titem_id:token\trating:float\ttimestamp:float\n");
        let mut t = 1_000_000_000u64;
        for j in 0..self.per_user {
            for (u, list) in lists.iter().enumerate() {
                t += self.step;
                let _ = writeln!(inter, "{}\t{}\t4\t{t}", u + 1, list[j]);
            }
        }
        std::fs::write(dir.join("ml-100k.item"), items).unwrap();
        std::fs::write(dir.join("ml-100k.user"), users).unwrap();
        std::fs::write(dir.join("ml-100k.inter"), inter).unwrap();
    }
}
