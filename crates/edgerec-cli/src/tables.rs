//! The canonical tables the trainer reads, stored as Parquet.
//!
//! | file | columns |
//! |---|---|
//! | `users.parquet` | `user_id: u32`, `age: u16?`, `gender: utf8?`, `occupation: utf8?`, `zip: utf8?` |
//! | `items.parquet` | `item_id: u32`, `title: utf8`, `year: u16?`, `genres: list<utf8>` |
//! | `interactions.parquet` | `user_id: u32`, `item_id: u32`, `timestamp: i64` (unix s), `rating: f32?`, `seq: u64` |
//!
//! Interactions are stored sorted by `(timestamp, seq)`, where `seq` is the row's position in
//! the source file: ties in time keep file order. Reading a table checks every column's name
//! and type and names the file and column when one is wrong.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type, UInt16Type, UInt32Type, UInt64Type};
use arrow_array::{
    Array, ArrayRef, Float32Array, Int64Array, RecordBatch, StringArray, UInt16Array, UInt32Array,
    UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// A user row.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub user_id: u32,
    pub age: Option<u16>,
    pub gender: Option<String>,
    pub occupation: Option<String>,
    pub zip: Option<String>,
}

/// An item row.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRow {
    pub item_id: u32,
    pub title: String,
    pub year: Option<u16>,
    pub genres: Vec<String>,
}

/// One interaction (for MovieLens, a rating: the user watched the title).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interaction {
    pub user_id: u32,
    pub item_id: u32,
    pub timestamp: i64,
    pub rating: Option<f32>,
    pub seq: u64,
}

/// The three tables of a data directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Tables {
    pub users: Vec<User>,
    pub items: Vec<ItemRow>,
    /// Sorted by `(timestamp, seq)`.
    pub interactions: Vec<Interaction>,
}

pub const USERS: &str = "users.parquet";
pub const ITEMS: &str = "items.parquet";
pub const INTERACTIONS: &str = "interactions.parquet";

fn users_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::UInt32, false),
        Field::new("age", DataType::UInt16, true),
        Field::new("gender", DataType::Utf8, true),
        Field::new("occupation", DataType::Utf8, true),
        Field::new("zip", DataType::Utf8, true),
    ]))
}

fn genre_list_field() -> Field {
    Field::new("item", DataType::Utf8, true)
}

fn items_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("item_id", DataType::UInt32, false),
        Field::new("title", DataType::Utf8, false),
        Field::new("year", DataType::UInt16, true),
        Field::new(
            "genres",
            DataType::List(Arc::new(genre_list_field())),
            false,
        ),
    ]))
}

fn interactions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::UInt32, false),
        Field::new("item_id", DataType::UInt32, false),
        Field::new("timestamp", DataType::Int64, false),
        Field::new("rating", DataType::Float32, true),
        Field::new("seq", DataType::UInt64, false),
    ]))
}

impl Tables {
    /// Writes the three Parquet files into `dir` (created if needed).
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let u = &self.users;
        write_batch(
            &dir.join(USERS),
            users_schema(),
            vec![
                Arc::new(UInt32Array::from_iter_values(u.iter().map(|r| r.user_id))),
                Arc::new(UInt16Array::from_iter(u.iter().map(|r| r.age))),
                Arc::new(StringArray::from_iter(
                    u.iter().map(|r| r.gender.as_deref()),
                )),
                Arc::new(StringArray::from_iter(
                    u.iter().map(|r| r.occupation.as_deref()),
                )),
                Arc::new(StringArray::from_iter(u.iter().map(|r| r.zip.as_deref()))),
            ],
        )?;
        let it = &self.items;
        let mut genres = ListBuilder::new(StringBuilder::new()).with_field(genre_list_field());
        for row in it {
            for g in &row.genres {
                genres.values().append_value(g);
            }
            genres.append(true);
        }
        write_batch(
            &dir.join(ITEMS),
            items_schema(),
            vec![
                Arc::new(UInt32Array::from_iter_values(it.iter().map(|r| r.item_id))),
                Arc::new(StringArray::from_iter_values(
                    it.iter().map(|r| r.title.as_str()),
                )),
                Arc::new(UInt16Array::from_iter(it.iter().map(|r| r.year))),
                Arc::new(genres.finish()),
            ],
        )?;
        let x = &self.interactions;
        write_batch(
            &dir.join(INTERACTIONS),
            interactions_schema(),
            vec![
                Arc::new(UInt32Array::from_iter_values(x.iter().map(|r| r.user_id))),
                Arc::new(UInt32Array::from_iter_values(x.iter().map(|r| r.item_id))),
                Arc::new(Int64Array::from_iter_values(x.iter().map(|r| r.timestamp))),
                Arc::new(Float32Array::from_iter(x.iter().map(|r| r.rating))),
                Arc::new(UInt64Array::from_iter_values(x.iter().map(|r| r.seq))),
            ],
        )
    }

    /// Reads and checks the three tables of `dir`.
    pub fn read(dir: &Path) -> Result<Tables> {
        let users = read_table(&dir.join(USERS), &users_schema(), |b, t| {
            let id = t.col(b, "user_id")?.as_primitive::<UInt32Type>();
            let age = t.col(b, "age")?.as_primitive::<UInt16Type>();
            let gender = t.col(b, "gender")?.as_string::<i32>();
            let occupation = t.col(b, "occupation")?.as_string::<i32>();
            let zip = t.col(b, "zip")?.as_string::<i32>();
            Ok((0..b.num_rows())
                .map(|i| User {
                    user_id: id.value(i),
                    age: age.is_valid(i).then(|| age.value(i)),
                    gender: opt_str(gender, i),
                    occupation: opt_str(occupation, i),
                    zip: opt_str(zip, i),
                })
                .collect())
        })?;
        let items = read_table(&dir.join(ITEMS), &items_schema(), |b, t| {
            let id = t.col(b, "item_id")?.as_primitive::<UInt32Type>();
            let title = t.col(b, "title")?.as_string::<i32>();
            let year = t.col(b, "year")?.as_primitive::<UInt16Type>();
            let genres = t.col(b, "genres")?.as_list::<i32>();
            (0..b.num_rows())
                .map(|i| {
                    let g = genres.value(i);
                    let g = g.as_string::<i32>();
                    if g.null_count() > 0 {
                        return Err(t.err("genres", "null genre name"));
                    }
                    Ok(ItemRow {
                        item_id: id.value(i),
                        title: title.value(i).to_string(),
                        year: year.is_valid(i).then(|| year.value(i)),
                        genres: g.iter().flatten().map(str::to_string).collect(),
                    })
                })
                .collect()
        })?;
        let interactions = read_table(&dir.join(INTERACTIONS), &interactions_schema(), |b, t| {
            let user = t.col(b, "user_id")?.as_primitive::<UInt32Type>();
            let item = t.col(b, "item_id")?.as_primitive::<UInt32Type>();
            let ts = t.col(b, "timestamp")?.as_primitive::<Int64Type>();
            let rating = t.col(b, "rating")?.as_primitive::<Float32Type>();
            let seq = t.col(b, "seq")?.as_primitive::<UInt64Type>();
            Ok((0..b.num_rows())
                .map(|i| Interaction {
                    user_id: user.value(i),
                    item_id: item.value(i),
                    timestamp: ts.value(i),
                    rating: rating.is_valid(i).then(|| rating.value(i)),
                    seq: seq.value(i),
                })
                .collect())
        })?;
        let path = dir.join(INTERACTIONS);
        if let Some(w) = interactions
            .windows(2)
            .position(|w| (w[0].timestamp, w[0].seq) >= (w[1].timestamp, w[1].seq))
        {
            bail!(
                "{}: rows {} and {} are not sorted by (timestamp, seq)",
                path.display(),
                w,
                w + 1
            );
        }
        Ok(Tables {
            users,
            items,
            interactions,
        })
    }
}

fn opt_str(a: &StringArray, i: usize) -> Option<String> {
    a.is_valid(i).then(|| a.value(i).to_string())
}

fn write_batch(path: &Path, schema: SchemaRef, columns: Vec<ArrayRef>) -> Result<()> {
    let batch = RecordBatch::try_new(schema.clone(), columns)
        .with_context(|| format!("building {}", path.display()))?;
    let tmp = path.with_extension("parquet.tmp");
    let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut w = ArrowWriter::try_new(file, schema, None)?;
    w.write(&batch)?;
    w.close()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Names the file in errors about its columns.
struct TableFile {
    path: PathBuf,
}

impl TableFile {
    fn err(&self, column: &str, what: &str) -> anyhow::Error {
        anyhow!("{}: column {column:?}: {what}", self.path.display())
    }

    fn col<'b>(&self, batch: &'b RecordBatch, name: &str) -> Result<&'b ArrayRef> {
        batch
            .column_by_name(name)
            .ok_or_else(|| self.err(name, "missing"))
    }
}

/// Reads every batch of a Parquet file after checking its schema against `expected` (names,
/// types, and that non-nullable columns hold no nulls).
fn read_table<T>(
    path: &Path,
    expected: &Schema,
    mut rows: impl FnMut(&RecordBatch, &TableFile) -> Result<Vec<T>>,
) -> Result<Vec<T>> {
    let t = TableFile {
        path: path.to_path_buf(),
    };
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{}: not a readable Parquet file", path.display()))?;
    let schema = builder.schema().clone();
    for f in expected.fields() {
        let found = schema
            .field_with_name(f.name())
            .map_err(|_| t.err(f.name(), "missing"))?;
        let same_type = match (found.data_type(), f.data_type()) {
            (DataType::List(a), DataType::List(b)) => a.data_type() == b.data_type(),
            (a, b) => a == b,
        };
        if !same_type {
            return Err(t.err(
                f.name(),
                &format!("has type {}, expected {}", found.data_type(), f.data_type()),
            ));
        }
    }
    let reader = builder
        .build()
        .with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.with_context(|| format!("reading {}", path.display()))?;
        for f in expected.fields().iter().filter(|f| !f.is_nullable()) {
            if t.col(&batch, f.name())?.null_count() > 0 {
                return Err(t.err(f.name(), "holds nulls"));
            }
        }
        out.extend(rows(&batch, &t)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Tables {
        Tables {
            users: vec![User {
                user_id: 1,
                age: Some(30),
                gender: Some("F".into()),
                occupation: None,
                zip: Some("02139".into()),
            }],
            items: vec![
                ItemRow {
                    item_id: 5,
                    title: "A".into(),
                    year: None,
                    genres: vec![],
                },
                ItemRow {
                    item_id: 6,
                    title: "B".into(),
                    year: Some(1999),
                    genres: vec!["Drama".into(), "War".into()],
                },
            ],
            interactions: vec![
                Interaction {
                    user_id: 1,
                    item_id: 6,
                    timestamp: 10,
                    rating: Some(4.0),
                    seq: 1,
                },
                Interaction {
                    user_id: 1,
                    item_id: 5,
                    timestamp: 10,
                    rating: None,
                    seq: 2,
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let t = sample();
        t.write(dir.path()).unwrap();
        assert_eq!(Tables::read(dir.path()).unwrap(), t);
    }

    #[test]
    fn wrong_column_type_names_file_and_column() {
        let dir = tempfile::tempdir().unwrap();
        sample().write(dir.path()).unwrap();
        // Overwrite users.parquet with user_id as a string column.
        let schema = Arc::new(Schema::new(vec![Field::new(
            "user_id",
            DataType::Utf8,
            false,
        )]));
        write_batch(
            &dir.path().join(USERS),
            schema,
            vec![Arc::new(StringArray::from(vec!["1"]))],
        )
        .unwrap();
        let err = format!("{:#}", Tables::read(dir.path()).unwrap_err());
        assert!(
            err.contains("users.parquet") && err.contains("user_id"),
            "{err}"
        );
    }

    #[test]
    fn garbage_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        sample().write(dir.path()).unwrap();
        std::fs::write(dir.path().join(ITEMS), b"not parquet").unwrap();
        let err = format!("{:#}", Tables::read(dir.path()).unwrap_err());
        assert!(err.contains("items.parquet"), "{err}");
    }
}
