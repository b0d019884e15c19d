//! Turns a [`SearchQuery`] into a tantivy query, without tantivy's query parser.
//!
//! User text is never parsed as query syntax (`a:b`, unbalanced quotes and brackets are
//! just text): it is segmented with the index's analyzer and each distinct term becomes
//! one optional clause that matches the term in any text field. A document therefore
//! needs one term to match and ranks higher the more terms (and the better fields) it
//! matches. Abbreviation expansions (`synonyms.rs`) add lower-boosted optional clauses;
//! the whole text is also tried as an exact dataset id. Pinyin and character-bigram
//! clauses (`fuzzy.rs`) let Latin-letter input and a mistyped character find the title
//! meant; they weigh less than the words themselves. Filters are required clauses that do
//! not contribute to the score.

use tantivy::Term;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, DisjunctionMaxQuery, EmptyQuery, Occur,
    Query, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};

use super::schema::Fields;
use super::{SearchQuery, fuzzy, synonyms, tokenizer};

/// Only the first this many distinct terms of a query are used, bounding the cost of a
/// pasted paragraph.
const MAX_QUERY_TERMS: usize = 32;

/// Weight of an expansion relative to the user's own terms.
const EXPANSION_BOOST: f32 = 0.5;

/// Weight of an exact id match: an id is a precise request and should come first.
const ID_BOOST: f32 = 10.0;

/// Longer query text is not tried as a dataset id (ids are short resource codes).
const MAX_ID_BYTES: usize = 128;

/// Weight of a pinyin match for a query typed in Latin letters: the clerk's intent is as
/// clear as with the characters.
const LATIN_PINYIN_BOOST: f32 = 2.0;

/// Weight of a match of a Chinese query's pinyin (a homophone typo finds the word meant),
/// and of its character pairs (one wrong character still shares the others).
const HOMOPHONE_BOOST: f32 = 0.6;
const BIGRAM_BOOST: f32 = 0.3;

/// Weight of a single Chinese character of a longer query (see `text_query`).
const LONE_CHARACTER_BOOST: f32 = 0.2;

/// Chinese runs longer than this are not looked up by pinyin (no title word is that long).
const MAX_PINYIN_RUN_CHARS: usize = 12;

/// How much a term's matches in other fields add to its best field's score.
const FIELD_TIE_BREAKER: f32 = 0.2;

/// The query to run, and whether it ranks by relevance (false: match all, filters only).
pub(super) struct Built {
    pub query: Box<dyn Query>,
    pub scored: bool,
}

/// Builds the query for `q`: text clauses (if any) and filters.
pub(super) fn build(fields: &Fields, q: &SearchQuery) -> Built {
    let text = q.q.trim();
    let text_query = if text.is_empty() {
        None
    } else {
        Some(text_query(fields, text, &q.synonyms))
    };
    let scored = text_query.is_some();

    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if let Some(query) = text_query {
        clauses.push((Occur::Must, query));
    }
    let filters = [
        (fields.dept, non_empty(q.dept.as_deref())),
        (fields.share_type, q.share_type.map(|s| s.as_str())),
        (fields.theme_exact, non_empty(q.theme.as_deref())),
        (fields.update_cycle, q.update_cycle.map(|u| u.as_str())),
    ];
    for (field, value) in filters {
        if let Some(value) = value {
            let filter = exact_term(field, value);
            clauses.push((Occur::Must, Box::new(ConstScoreQuery::new(filter, 0.0))));
        }
    }

    let query: Box<dyn Query> = if clauses.is_empty() {
        Box::new(AllQuery)
    } else {
        Box::new(BooleanQuery::new(clauses))
    };
    Built { query, scored }
}

/// The optional clauses for the user's text; at least one of them must match.
fn text_query(fields: &Fields, text: &str, extra_synonyms: &[Vec<String>]) -> Box<dyn Query> {
    let mut terms = tokenizer::tokens(text);
    terms.truncate(MAX_QUERY_TERMS);

    let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for term in &terms {
        let clause = any_field(fields, term);
        // A lone Chinese character in a longer query is mostly what jieba leaves of a
        // word it does not know (a typo: 残急人 → 残 急 人); matching it in short titles
        // must not outrank the pinyin and bigram matches of the word meant.
        let lone_han = term.chars().count() == 1 && !term.is_ascii() && text.chars().count() > 1;
        if lone_han {
            let weak = BoostQuery::new(clause, LONE_CHARACTER_BOOST);
            should.push((Occur::Should, Box::new(weak)));
        } else {
            should.push((Occur::Should, clause));
        }
    }
    for expansion in synonyms::expansions(text, &terms, extra_synonyms) {
        let expansion_terms = tokenizer::tokens(&expansion);
        if expansion_terms.is_empty() || expansion_terms.iter().all(|t| terms.contains(t)) {
            continue;
        }
        // The expansion is a whole word (危险化学品): a document must contain all of its
        // terms, or "危化品" would match everything mentioning 危险.
        let all: Vec<(Occur, Box<dyn Query>)> = expansion_terms
            .iter()
            .map(|t| (Occur::Must, any_field(fields, t)))
            .collect();
        let clause = BoostQuery::new(Box::new(BooleanQuery::new(all)), EXPANSION_BOOST);
        should.push((Occur::Should, Box::new(clause)));
    }
    for (term, units) in fuzzy::latin_query_terms(text) {
        // A longer run of syllables or initials is far more telling than a short one
        // (`xzc` is in many words, `xzcf` is 行政处罚).
        let boost = LATIN_PINYIN_BOOST * (units as f32 / 2.0).max(1.0).powi(2);
        let clause = BoostQuery::new(scored_term(fields.pinyin, &term), boost);
        should.push((Occur::Should, Box::new(clause)));
    }
    for run in fuzzy::han_runs(text) {
        if run.chars().count() > MAX_PINYIN_RUN_CHARS {
            continue;
        }
        if let Some((full, _)) = fuzzy::pinyin_of(&run) {
            let clause = BoostQuery::new(scored_term(fields.pinyin, &full), HOMOPHONE_BOOST);
            should.push((Occur::Should, Box::new(clause)));
        }
    }
    let grams = fuzzy::bigrams(text);
    if grams.len() >= 2 {
        // At least half of the pairs must match: one wrong character spoils at most two.
        let needed = grams.len().div_ceil(2);
        let pairs: Vec<(Occur, Box<dyn Query>)> = grams
            .iter()
            .map(|g| (Occur::Should, scored_term(fields.grams, g)))
            .collect();
        let clause = BooleanQuery::with_minimum_required_clauses(pairs, needed);
        should.push((
            Occur::Should,
            Box::new(BoostQuery::new(Box::new(clause), BIGRAM_BOOST)),
        ));
    }
    if text.len() <= MAX_ID_BYTES {
        let id = BoostQuery::new(exact_term(fields.id, text), ID_BOOST);
        should.push((Occur::Should, Box::new(id)));
    }

    if should.is_empty() {
        // Nothing searchable in the text (only punctuation or emoji): nothing matches.
        return Box::new(EmptyQuery);
    }
    // A boolean query with only optional clauses matches documents matching at least one.
    Box::new(BooleanQuery::new(should))
}

/// One term in any text field, scored by its best field (plus a little for the others).
fn any_field(fields: &Fields, term: &str) -> Box<dyn Query> {
    let per_field: Vec<Box<dyn Query>> = fields
        .weighted_text()
        .into_iter()
        .map(|w| {
            let term_query = TermQuery::new(
                Term::from_field_text(w.field, term),
                IndexRecordOption::WithFreqs,
            );
            Box::new(BoostQuery::new(Box::new(term_query), w.boost)) as Box<dyn Query>
        })
        .collect();
    Box::new(DisjunctionMaxQuery::with_tie_breaker(
        per_field,
        FIELD_TIE_BREAKER,
    ))
}

fn scored_term(field: Field, value: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::WithFreqs,
    ))
}

fn exact_term(field: Field, value: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::Basic,
    ))
}

/// Query strings often carry empty parameters (`?dept=`); they mean "no filter".
fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}
