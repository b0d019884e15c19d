//! The tantivy schema of the catalog index and the mapping of an [`IndexDoc`] onto it.
//!
//! Two kinds of fields:
//! - *text* fields, segmented by jieba (`tokenizer.rs`), searched with per-field boosts;
//! - *exact* fields, indexed as one raw term for filters and exact id lookups, and FAST
//!   (columnar) where facets count them or results are sorted by them.
//!
//! Theme is both: `theme` is searchable text, `theme_exact` the filter/facet value.
//! Only what a hit shows is stored (id, title, dept, dept name, share type, summary).

use tantivy::TantivyDocument;
use tantivy::schema::{
    FAST, Field, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions,
};

use super::tokenizer::{self, TOKENIZER_NAME};
use super::{IndexDoc, fuzzy};

/// Bumped whenever indexing changes in a way the schema does not show (tokenization,
/// what goes into a field). An index written with another version is rebuilt.
pub(super) const FORMAT_VERSION: u32 = 3;

/// Field names, as used for fast-field (column) access.
pub(super) const ID: &str = "id";
pub(super) const DEPT: &str = "dept";
pub(super) const SHARE_TYPE: &str = "share_type";
pub(super) const THEME_EXACT: &str = "theme_exact";
pub(super) const PUBLISHED_AT: &str = "published_at";

/// Handles of every field of the schema.
#[derive(Debug, Clone)]
pub(super) struct Fields {
    pub id: Field,
    pub dept: Field,
    pub dept_name: Field,
    pub title: Field,
    pub summary: Field,
    pub keywords: Field,
    pub theme: Field,
    pub theme_exact: Field,
    pub share_type: Field,
    pub update_cycle: Field,
    pub field_titles: Field,
    pub published_at: Field,
    /// Pinyin and initials of the title's and keywords' words (`fuzzy.rs`).
    pub pinyin: Field,
    /// Adjacent Chinese character pairs of the title and keywords (`fuzzy.rs`).
    pub grams: Field,
}

/// A searchable text field and its weight in ranking: a match in the title says more
/// about a dataset than a match in one of its column titles.
///
/// The boosts are kept moderate so that matching more of the query's words outweighs
/// matching one word in a better field: jieba splits 危险化学品 into 危险 / 化学 / 化学品,
/// and a summary containing all three should beat a title containing only 危险 (with a
/// title boost of 3 it did not).
pub(super) struct Weighted {
    pub field: Field,
    pub boost: f32,
}

impl Fields {
    /// The text fields a query term is matched against, with their boosts.
    pub fn weighted_text(&self) -> [Weighted; 6] {
        [
            Weighted {
                field: self.title,
                boost: 2.0,
            },
            Weighted {
                field: self.keywords,
                boost: 1.6,
            },
            Weighted {
                field: self.theme,
                boost: 1.3,
            },
            Weighted {
                field: self.dept_name,
                boost: 1.3,
            },
            Weighted {
                field: self.summary,
                boost: 1.0,
            },
            Weighted {
                field: self.field_titles,
                boost: 0.8,
            },
        ]
    }
}

/// Jieba-segmented text. Frequencies feed BM25; positions are not kept because no
/// phrase queries are run (jieba's overlapping search-mode tokens make them unreliable).
fn text(stored: bool) -> TextOptions {
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(TOKENIZER_NAME)
        .set_index_option(IndexRecordOption::WithFreqs);
    let options = TextOptions::default().set_indexing_options(indexing);
    if stored {
        options.set_stored()
    } else {
        options
    }
}

/// Space-separated derived terms (pinyin, bigrams), matched exactly; frequencies for
/// BM25, nothing stored.
fn derived() -> TextOptions {
    let indexing = TextFieldIndexing::default()
        .set_tokenizer("whitespace")
        .set_index_option(IndexRecordOption::WithFreqs);
    TextOptions::default().set_indexing_options(indexing)
}

/// One untokenized term per value, for exact matching; no field norms (never scored by
/// length).
fn exact() -> TextOptions {
    let indexing = TextFieldIndexing::default()
        .set_tokenizer("raw")
        .set_index_option(IndexRecordOption::Basic)
        .set_fieldnorms(false);
    TextOptions::default().set_indexing_options(indexing)
}

/// Builds the schema and returns it with the field handles.
pub(super) fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        id: b.add_text_field(ID, exact() | STORED | FAST),
        dept: b.add_text_field(DEPT, exact() | STORED | FAST),
        dept_name: b.add_text_field("dept_name", text(true)),
        title: b.add_text_field("title", text(true)),
        summary: b.add_text_field("summary", text(true)),
        keywords: b.add_text_field("keywords", text(false)),
        theme: b.add_text_field("theme", text(false)),
        theme_exact: b.add_text_field(THEME_EXACT, exact() | FAST),
        share_type: b.add_text_field(SHARE_TYPE, exact() | STORED | FAST),
        update_cycle: b.add_text_field("update_cycle", exact()),
        field_titles: b.add_text_field("field_titles", text(false)),
        // FAST so that a "newest first" order can be added without re-indexing.
        published_at: b.add_text_field(PUBLISHED_AT, exact() | FAST),
        pinyin: b.add_text_field("pinyin", derived()),
        grams: b.add_text_field("grams", derived()),
    };
    (b.build(), fields)
}

/// Maps a catalog entry onto a tantivy document.
pub(super) fn to_document(f: &Fields, d: &IndexDoc) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_text(f.id, &d.id);
    doc.add_text(f.dept, &d.dept);
    doc.add_text(f.dept_name, &d.dept_name);
    doc.add_text(f.title, &d.title);
    doc.add_text(f.summary, &d.summary);
    for keyword in &d.keywords {
        doc.add_text(f.keywords, keyword);
    }
    doc.add_text(f.theme, &d.theme);
    // A dataset without a theme is not counted in the theme facet (rather than under
    // an empty key).
    if !d.theme.trim().is_empty() {
        doc.add_text(f.theme_exact, &d.theme);
    }
    doc.add_text(f.share_type, d.share_type.as_str());
    doc.add_text(f.update_cycle, d.update_cycle.as_str());
    for title in &d.field_titles {
        doc.add_text(f.field_titles, title);
    }
    doc.add_text(f.published_at, &d.published_at);
    let mut names = d.title.clone();
    for keyword in &d.keywords {
        names.push(' ');
        names.push_str(keyword);
    }
    let words = tokenizer::tokens(&names);
    doc.add_text(f.pinyin, fuzzy::pinyin_terms(&words).join(" "));
    doc.add_text(f.grams, fuzzy::bigrams(&names).join(" "));
    doc
}
