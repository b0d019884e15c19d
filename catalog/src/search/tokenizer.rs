//! The one text analyzer of the search index: jieba word segmentation with the
//! project's government-domain dictionary, lowercasing, and removal of tokens that are not
//! words.
//!
//! Indexing and querying must segment text identically, so both go through [`analyzer`].
//! The segmenter is one process-wide [`Jieba`]: jieba's own dictionary plus
//! `dict.txt` beside this file (department names and dataset terms such as 危险化学品,
//! 住房公积金, 最低生活保障, so that they are kept whole as well as split). Loading it
//! takes a noticeable fraction of a second, so [`warm_up`] is called when an index is
//! opened rather than on the first user query. Changing `dict.txt` changes tokenization:
//! bump `schema::FORMAT_VERSION` so that existing indexes are rebuilt.

use std::sync::OnceLock;

use jieba_rs::{Jieba, TokenizeMode};
use tantivy::tokenizer::{
    LowerCaser, RemoveLongFilter, TextAnalyzer, Token, TokenFilter, TokenStream, Tokenizer,
};

/// Name under which the analyzer is registered in every index's tokenizer manager; the
/// schema's text fields refer to it.
pub(super) const TOKENIZER_NAME: &str = "jieba";

/// Tokens longer than this (in bytes) are dropped: they are base64 blobs or similar,
/// never words someone searches for.
const MAX_TOKEN_BYTES: usize = 64;

/// The government-domain user dictionary, in jieba's format (`word frequency [tag]`).
const USER_DICT: &str = include_str!("dict.txt");

/// The segmenter: jieba's dictionary and [`USER_DICT`].
fn jieba() -> &'static Jieba {
    static JIEBA: OnceLock<Jieba> = OnceLock::new();
    JIEBA.get_or_init(|| {
        let mut jieba = Jieba::new();
        jieba
            .load_dict(&mut USER_DICT.as_bytes())
            .expect("the built-in user dictionary is well-formed (checked by a test)");
        jieba
    })
}

/// The shared analyzer. Cloning a `TextAnalyzer` is cheap here (the tokenizer refers to
/// the global segmenter), and each use needs its own `&mut`, so callers clone it.
pub(super) fn analyzer() -> TextAnalyzer {
    static ANALYZER: OnceLock<TextAnalyzer> = OnceLock::new();
    ANALYZER
        .get_or_init(|| {
            TextAnalyzer::builder(JiebaSearch)
                .filter(WordsOnly)
                .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
                .filter(LowerCaser)
                .build()
        })
        .clone()
}

/// jieba in search mode: every dictionary word of the text, including the shorter words
/// inside longer ones (危险化学品 also gives 危险, 化学, 化学品), with HMM for unknown
/// words.
#[derive(Clone)]
struct JiebaSearch;

impl Tokenizer for JiebaSearch {
    type TokenStream<'a> = JiebaStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> JiebaStream {
        let base = text.as_ptr() as usize;
        let tokens = jieba()
            .tokenize(text, TokenizeMode::Search, true)
            .into_iter()
            .map(|t| {
                let offset_from = t.word.as_ptr() as usize - base;
                Token {
                    offset_from,
                    offset_to: offset_from + t.word.len(),
                    position: t.start,
                    position_length: t.end - t.start,
                    text: t.word.to_string(),
                }
            })
            .collect();
        JiebaStream {
            tokens,
            next: 0,
            token: Token::default(),
        }
    }
}

struct JiebaStream {
    tokens: Vec<Token>,
    next: usize,
    token: Token,
}

impl TokenStream for JiebaStream {
    fn advance(&mut self) -> bool {
        match self.tokens.get_mut(self.next) {
            Some(t) => {
                self.token = std::mem::take(t);
                self.next += 1;
                true
            }
            None => false,
        }
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
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
    fn user_dictionary_keeps_domain_terms_whole() {
        for (text, word) in [
            ("住房公积金缴存明细", "住房公积金"),
            ("最低生活保障对象名单", "最低生活保障"),
            ("危化品企业", "危化品"),
            ("网约车平台", "网约车"),
        ] {
            let t = tokens(text);
            assert!(t.contains(&word.to_string()), "{text}: {t:?}");
        }
        // Search mode still yields the words inside the whole term.
        let t = tokens("住房公积金");
        assert!(t.contains(&"公积金".to_string()), "{t:?}");
    }

    #[test]
    fn terms_are_distinct() {
        let t = tokens("企业 企业 企业");
        assert_eq!(t, vec!["企业".to_string()]);
    }
}
