//! The full-text search index of the catalog (tantivy, with jieba word segmentation).
//!
//! Each node keeps its own index as a view derived from the applied catalog state: an
//! indexer task stages [`SearchIndex::upsert`] / [`SearchIndex::delete`] for changed
//! datasets and calls [`SearchIndex::commit`] with the applied-log index, which is
//! persisted with the commit so that a restarted node knows how far its index is behind
//! ([`SearchIndex::applied_marker`]). The gateway's `GET /v1/search` is a thin
//! translation of its query string into a [`SearchQuery`] and of the [`SearchResult`]
//! into JSON.
//!
//! Files: `index.rs` opens, writes and searches; `schema.rs` is the field layout;
//! `tokenizer.rs` the jieba analyzer; `query.rs` builds queries from user text;
//! `synonyms.rs` the abbreviation table; `fuzzy.rs` the pinyin and bigram forms that
//! tolerate Latin-letter input and typos; `facets.rs` counts facets; `highlight.rs` makes
//! the snippets; `dict.txt` is the government-domain word list for jieba.

mod facets;
mod fuzzy;
mod highlight;
mod index;
mod query;
mod schema;
mod synonyms;
mod tokenizer;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

pub use self::index::SearchIndex;
use crate::model::{Dataset, ShareType, UpdateCycle};

/// Page size when the request names none.
pub const DEFAULT_LIMIT: usize = 20;

/// Largest page a search returns; larger limits are capped. (`GET /v1/search` allows
/// 100 a page; the CKAN API, whose clients ask for up to 1,000 rows, allows this many.)
pub const MAX_LIMIT: usize = 1000;

/// What the index holds about one dataset: the searchable text, the filterable
/// attributes and what a hit shows. Retired datasets are not indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDoc {
    pub id: String,
    pub dept: String,
    /// Name of the providing department, searchable (应急管理局 finds its datasets).
    pub dept_name: String,
    pub title: String,
    pub summary: String,
    pub keywords: Vec<String>,
    pub theme: String,
    pub share_type: ShareType,
    pub update_cycle: UpdateCycle,
    /// Titles and column names of the dataset's fields (信息项).
    pub field_titles: Vec<String>,
    pub published_at: String,
}

impl IndexDoc {
    /// The index entry for a dataset of the department named `dept_name`.
    pub fn from_dataset(d: &Dataset, dept_name: &str) -> IndexDoc {
        IndexDoc {
            id: d.id.clone(),
            dept: d.dept.clone(),
            dept_name: dept_name.to_string(),
            title: d.title.clone(),
            summary: d.summary.clone(),
            keywords: d.keywords.clone(),
            theme: d.theme.clone(),
            share_type: d.share_type,
            update_cycle: d.update_cycle,
            field_titles: d
                .fields
                .iter()
                .flat_map(|f| [f.title.clone(), f.name.clone()])
                .collect(),
            published_at: d.published_at.clone(),
        }
    }
}

/// A search request, as given in `GET /v1/search?q=&dept=&share_type=&theme=&update_cycle=&limit=&offset=`.
///
/// Every parameter is optional. Empty filter parameters (`dept=`) mean "no filter";
/// `limit` defaults to [`DEFAULT_LIMIT`] and is capped at [`MAX_LIMIT`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchQuery {
    /// Free text; empty means "everything" (filters only), ordered by id.
    pub q: String,
    #[serde(deserialize_with = "empty_as_none")]
    pub dept: Option<String>,
    #[serde(deserialize_with = "empty_as_none")]
    pub share_type: Option<ShareType>,
    #[serde(deserialize_with = "empty_as_none")]
    pub theme: Option<String>,
    #[serde(deserialize_with = "empty_as_none")]
    pub update_cycle: Option<UpdateCycle>,
    pub limit: usize,
    pub offset: usize,
    /// Order of the hits; relevance by default (by id when there is no text).
    pub sort: SearchSort,
    /// Synonym groups defined by admins, in addition to the built-in ones; filled in by
    /// the caller from the catalog, never from the request.
    #[serde(skip)]
    pub synonyms: Vec<Vec<String>>,
}

/// Orders a search can return its hits in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchSort {
    /// Best match first (BM25 with field boosts); by id when the query has no text.
    #[default]
    Relevance,
    /// Most recently published first.
    Newest,
    /// Oldest published first.
    Oldest,
    /// By dataset id, ascending.
    Id,
}

impl Default for SearchQuery {
    fn default() -> Self {
        SearchQuery {
            q: String::new(),
            dept: None,
            share_type: None,
            theme: None,
            update_cycle: None,
            limit: DEFAULT_LIMIT,
            offset: 0,
            sort: SearchSort::Relevance,
            synonyms: Vec::new(),
        }
    }
}

/// The answer to a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResult {
    /// Number of matching datasets (all pages).
    pub total: u64,
    pub hits: Vec<Hit>,
    /// Counts over all matching datasets (not just this page).
    pub facets: Facets,
}

/// One matching dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub id: String,
    pub title: String,
    pub dept: String,
    pub dept_name: String,
    pub share_type: ShareType,
    /// Relevance (BM25 with field boosts); 0 when the query has no text.
    pub score: f32,
    /// Part of the summary (or title) with matched words in `<em>…</em>`; other text is
    /// HTML-escaped.
    pub highlight: String,
}

/// Number of matching datasets per department code, share type and theme. Values with
/// no match are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facets {
    pub dept: BTreeMap<String, u64>,
    pub share_type: BTreeMap<String, u64>,
    pub theme: BTreeMap<String, u64>,
}

/// Reads an optional parameter, treating an empty (or blank) string as absent, so that
/// `?share_type=` is "no filter" rather than an unknown share type.
fn empty_as_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    use serde::de::IntoDeserializer;

    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    T::deserialize(trimmed.to_string().into_deserializer()).map(Some)
}
