//! Small hand-made models for doctests, unit tests and the integration tests: compiled only
//! for this crate's tests and with the `test-support` feature (which the crate's own
//! dev-dependency on itself turns on), never in a published build.

pub mod fuzz;
pub mod mutations;

use crate::bundle::{
    BundleContents, ContentModel, FeatureContract, IalsFactors, MediaTable, Meta, Popularity,
    Quotas, ServingSettings, TwoTowerModel,
};
use crate::catalog::{Catalog, Item};
use crate::features::{
    FeatureConfig, FeatureSpace, Gender, Maturity, Media, MediaKind, ReleaseType, UserProfile,
    Vocabularies, Vocabulary,
};

/// Four items over three genres.
pub fn tiny_contents() -> BundleContents {
    let genres = vec!["Action".to_string(), "Comedy".into(), "Drama".into()];
    let items = vec![
        Item::new(10, "Alpha", Some(1995), vec![0]),
        Item::new(20, "Beta", Some(1996), vec![1]),
        Item::new(30, "Gamma", None, vec![0, 2]),
        Item::new(40, "Delta", Some(1990), vec![2]),
    ];
    let catalog = Catalog::new(genres, items).expect("valid catalog");
    BundleContents {
        meta: Meta {
            model_version: "tiny-1".into(),
            created_at: 0,
            dataset: "hand-made".into(),
            seed: 7,
            trainer: "tests".into(),
            recipe: "{}".into(),
        },
        catalog,
        popularity: Popularity {
            half_life_days: 30.0,
            reference_time: 0,
            scores: vec![1.0, 0.5, 0.25, 0.75],
        },
        ials: None,
        content: None,
        two_tower: None,
        quotas: None,
        new_user_quotas: None,
        neighbours: None,
        features: None,
        ranker: None,
        media: None,
        serving: None,
        graphs: Vec::new(),
        calendar: None,
        release: None,
    }
}

/// [`tiny_contents`] with every optional section: iALS factors in two dimensions (Alpha and
/// Gamma on one axis, Beta and Delta on the other), a content index over the genres, a
/// two-tower model with a small real user tower ([`tiny_user_tower`]) and quotas 2:1:1:1.
pub fn tiny_contents_with_sources() -> BundleContents {
    use crate::content::ContentIndex;
    use crate::ials::Factors;
    let mut c = tiny_contents();
    let factors = Factors::new(2, vec![1.0, 0.0, 0.0, 1.0, 0.9, 0.1, 0.1, 0.8]).expect("2-d");
    c.ials = Some(IalsFactors::from_factors(factors, 2.0, 0.1).expect("valid factors"));
    let tokens: Vec<Vec<String>> = c
        .catalog
        .items()
        .iter()
        .map(|i| {
            c.catalog
                .genre_names(i)
                .into_iter()
                .map(|g| format!("genre:{g}"))
                .collect()
        })
        .collect();
    let index =
        ContentIndex::build(&tokens, &[], vec![1.0, 0.5, 0.25, 0.75], 0.1).expect("valid index");
    c.content = Some(ContentModel::new(index, 0.5).expect("valid decay"));
    c.two_tower = Some(
        TwoTowerModel::new(
            2,
            vec![0.6, 0.8, 1.0, 0.0, 0.0, 1.0, -0.6, 0.8],
            tiny_user_tower(4, 2, 2),
            vec!["space".into(), "comedy".into()],
            50,
            20,
            crate::tower::TWO_TOWER_DENSE_FEATURES.into(),
        )
        .expect("valid two-tower model"),
    );
    c.quotas = Some(Quotas {
        ials: 2,
        two_tower: 1,
        content: 1,
        popularity: 1,
    });
    c
}

/// A small valid user tower in the trainer's graph shape ([`crate::tower::user_tower_onnx`])
/// whose hidden layer passes its input through (`relu(x) − relu(−x)`), so the output is the
/// mean of the history rows plus the mean of the search rows plus a linear map of the dense
/// features, L2-normalised; deterministic weights.
pub fn tiny_user_tower(n_items: usize, dim: usize, n_search: usize) -> Vec<u8> {
    use crate::tower::{TWO_TOWER_DENSE, TowerShape, TowerWeights, table_rows, user_tower_onnx};
    let n_dense = TWO_TOWER_DENSE;
    let wave = |n: usize, k: usize| -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7 + k * 3) % 11) as f32 - 5.0) / 5.0)
            .collect()
    };
    let (user_in, hidden) = (2 * dim + n_dense, 2 * dim);
    let dense_map = wave(n_dense * dim, 3);
    let mut w1 = vec![0f32; user_in * hidden];
    for i in 0..user_in {
        for c in 0..dim {
            // History and search components pass through; dense ones are mapped.
            let x = if i < 2 * dim {
                f32::from(u8::from(i % dim == c))
            } else {
                dense_map[(i - 2 * dim) * dim + c]
            };
            w1[i * hidden + c] = x;
            w1[i * hidden + dim + c] = -x;
        }
    }
    let mut w2 = vec![0f32; hidden * dim];
    for c in 0..dim {
        w2[c * dim + c] = 1.0;
        w2[(dim + c) * dim + c] = -1.0;
    }
    let (history, search) = (wave(n_items * dim, 1), wave(table_rows(n_search) * dim, 2));
    let (b1, b2) = (vec![0f32; hidden], vec![0f32; dim]);
    let shape = TowerShape {
        n_items,
        n_search_tokens: n_search,
        n_dense,
        dim,
        hidden,
        max_history: 50,
        max_searches: 20,
    };
    let weights = TowerWeights {
        history: &history,
        search: &search,
        w1: &w1,
        b1: &b1,
        w2: &w2,
        b2: &b2,
    };
    user_tower_onnx(&shape, &weights, "edgerec-tests").expect("the tiny user tower is well-formed")
}

/// [`tiny_contents_with_sources`] plus what the device's full pipeline reads besides a
/// ranker: the feature contract (`FEAT`, the catalog's genres as its genre vocabulary), the
/// media table (`MDIA`) and serving settings (`SERV`: 4 candidates, rows of 3, no fatigue
/// after 2 impressions, λ = 0.7). Item 30 is rated R, the others PG.
pub fn tiny_contents_for_device() -> BundleContents {
    use crate::features::MediaStats;
    let mut c = tiny_contents_with_sources();
    let vocab = Vocabularies {
        genres: Vocabulary::new(c.catalog.genres().iter().map(String::as_str)),
        languages: Vocabulary::new(["en"]),
        countries: Vocabulary::new(["US"]),
        ..Vocabularies::default()
    };
    let media: Vec<Media> = c
        .catalog
        .items()
        .iter()
        .map(|item| Media {
            id: item.id,
            kind: MediaKind::Movie,
            series_id: None,
            season: None,
            episode: None,
            duration_s: 5_400 + 600 * (item.id / 10),
            genres: item.genres.iter().map(|&g| u32::from(g) + 1).collect(),
            tags: vec![],
            actors: vec![],
            directors: vec![],
            composer: 0,
            distributor: 0,
            language: 1,
            country: 1,
            release_time: 788_918_400,
            release_type: ReleaseType::Theatrical,
            added_time: 0,
            maturity: if item.id == 30 {
                Maturity::R
            } else {
                Maturity::Pg
            },
            public_rating: None,
            revenue_usd: None,
        })
        .collect();
    let stats = (0..media.len() as u32)
        .map(|i| MediaStats {
            plays_24h: i,
            plays_7d: 5 * i,
        })
        .collect();
    c.features = Some(FeatureContract::new(FeatureSpace::new(
        vocab,
        FeatureConfig::default(),
    )));
    c.media = Some(MediaTable::new(media, stats, 86_400).expect("valid media"));
    c.serving = Some(ServingSettings {
        candidates: 4,
        rerank: crate::rerank::RerankSettings {
            k: 3,
            fatigue_impressions: 2,
            ..crate::rerank::RerankSettings::default()
        },
    });
    // Item-to-item neighbours with a zero quota: the section is decoded, checked and served
    // (the mutation suite and the fuzzer start from this bundle) without changing the blend.
    c.neighbours = Some(
        crate::bundle::Neighbours::new(
            &[
                vec![(2, 0.9), (1, 0.3)],
                vec![(3, 0.8)],
                vec![(0, 0.9)],
                vec![(1, 0.8), (2, 0.2)],
            ],
            0,
            0,
            0.1,
        )
        .expect("valid neighbour lists"),
    );
    c
}

/// Two genres, two titles (a film and the first episode of a series), one user.
pub fn tiny_features() -> (FeatureSpace, UserProfile, Vec<Media>) {
    let vocab = Vocabularies {
        genres: Vocabulary::new(["Drama", "Horror"]),
        tags: Vocabulary::new(["christmas"]),
        people: Vocabulary::new(["Ann Actor", "Dan Director", "Bob Actor"]),
        distributors: Vocabulary::new(["Studio"]),
        languages: Vocabulary::new(["en", "fr"]),
        countries: Vocabulary::new(["US", "FR"]),
    };
    let base = Media {
        id: 100,
        kind: MediaKind::Movie,
        series_id: None,
        season: None,
        episode: None,
        duration_s: 6_000,
        genres: vec![1],
        tags: vec![],
        actors: vec![1],
        directors: vec![2],
        composer: 0,
        distributor: 1,
        language: 1,
        country: 1,
        release_time: 0,
        release_type: ReleaseType::Theatrical,
        added_time: 0,
        maturity: Maturity::Pg13,
        public_rating: Some(7.5),
        revenue_usd: Some(2.5e7),
    };
    let episode = Media {
        id: 200,
        kind: MediaKind::Episode,
        series_id: Some(9),
        season: Some(1),
        episode: Some(1),
        duration_s: 2_400,
        genres: vec![1, 2],
        actors: vec![1, 3],
        directors: vec![],
        maturity: Maturity::R,
        public_rating: None,
        revenue_usd: None,
        release_type: ReleaseType::Streaming,
        ..base.clone()
    };
    let profile = UserProfile {
        age: Some(15),
        gender: Gender::Female,
        language: 1,
        country: 1,
        utc_offset_minutes: 0,
        signup_time: 0,
        onboarding_genres: vec![2],
    };
    (
        FeatureSpace::new(vocab, FeatureConfig::default()),
        profile,
        vec![base, episode],
    )
}
