//! The one text analyzer of the search index: jieba word segmentation, lowercasing, and
//! removal of tokens that are not words.
//!
//! Indexing and querying must segment text identically, so both go through [`analyzer`].
//! jieba's dictionary is a process-wide static inside `tantivy-jieba`; loading it takes a
//! noticeable fraction of a second, so [`warm_up`] is called when an index is opened
//! rather than on the first user query.

use std::sync::OnceLock;

use tantivy::tokenizer::{
    LowerCaser, RemoveLongFilter, TextAnalyzer, Token, TokenFilter, TokenStream, Tokenizer,
};
use tantivy_jieba::JiebaTokenizer;

/// Name under which the analyzer is registered in every index's tokenizer manager; the
/// schema's text fields refer to it.
pub(super) const TOKENIZER_NAME: &str = "jieba";

/// Tokens longer than this (in bytes) are dropped: they are base64 blobs or similar,
/// never words someone searches for.
const MAX_TOKEN_BYTES: usize = 64;

/// The shared analyzer. Cloning a `TextAnalyzer` is cheap here (the jieba tokenizer refers
/// to the global dictionary), and each use needs its own `&mut`, so callers clone it.
pub(super) fn analyzer() -> TextAnalyzer {
    static ANALYZER: OnceLock<TextAnalyzer> = OnceLock::new();
    ANALYZER
        .get_or_init(|| {
            TextAnalyzer::builder(JiebaTokenizer::new())
                .filter(WordsOnly)
                .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
                .filter(LowerCaser)
                .build()
        })
        .clone()
}

/// Loads jieba's dictionary now so that the first search does not pay for it.
pub(super) fn warm_up() {
    let _ = tokens("预热分词词典");
}

/// Segments `text` into distinct terms, in order of first appearance.
///
/// jieba's search mode emits overlapping words (危险化学品 gives 危险, 化学, 化学品, …);
/// each distinct term is returned once.
pub(super) fn tokens(text: &str) -> Vec<String> {
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut out: Vec<String> = Vec::new();
    while let Some(token) = stream.next() {
        if !out.iter().any(|t| t == &token.text) {
            out.push(token.text.clone());
        }
    }
    out
}

/// Drops tokens without a single letter or digit: whitespace, punctuation and emoji that
/// jieba passes through as one-character tokens. Indexing them would put a posting for
/// "，" in nearly every document, and a query for `a, b` would match everything through
/// the comma. CJK ideographs count as letters (`char::is_alphanumeric`).
#[derive(Clone)]
struct WordsOnly;

impl TokenFilter for WordsOnly {
    type Tokenizer<T: Tokenizer> = WordsOnlyWrapper<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> WordsOnlyWrapper<T> {
        WordsOnlyWrapper { inner: tokenizer }
    }
}

#[derive(Clone)]
struct WordsOnlyWrapper<T> {
    inner: T,
}

impl<T: Tokenizer> Tokenizer for WordsOnlyWrapper<T> {
    type TokenStream<'a> = WordsOnlyStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        WordsOnlyStream {
            tail: self.inner.token_stream(text),
        }
    }
}

struct WordsOnlyStream<T> {
    tail: T,
}

impl<T: TokenStream> TokenStream for WordsOnlyStream<T> {
    fn advance(&mut self) -> bool {
        while self.tail.advance() {
            if self.tail.token().text.chars().any(char::is_alphanumeric) {
                return true;
            }
        }
        false
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::tokens;

    #[test]
    fn segments_chinese_and_drops_punctuation() {
        let t = tokens("危险化学品企业名录，（2024）ABC 😀");
        assert!(t.contains(&"化学品".to_string()), "{t:?}");
        assert!(t.contains(&"企业".to_string()), "{t:?}");
        assert!(t.contains(&"abc".to_string()), "lowercased: {t:?}");
        assert!(t.contains(&"2024".to_string()), "{t:?}");
        assert!(
            t.iter().all(|w| w.chars().any(char::is_alphanumeric)),
            "{t:?}"
        );
    }

    #[test]
    fn terms_are_distinct() {
        let t = tokens("企业 企业 企业");
        assert_eq!(t, vec!["企业".to_string()]);
    }
}
