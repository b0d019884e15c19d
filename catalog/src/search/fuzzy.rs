//! What lets a search find what the clerk meant when the words typed are not the words
//! indexed: pinyin and pinyin initials, and character bigrams for a mistyped character.
//!
//! Two index fields hold these forms of a dataset's title and keywords (see
//! `schema.rs`), as space-separated terms:
//! - `pinyin`: for every segmented word of two or more Chinese characters, its toneless
//!   pinyin (公积金 → `gongjijin`) and its initials (`gjj`). A query typed in Latin
//!   letters (`gongjijin`, `gong ji jin`, `gjj`) is looked up there. A query in Chinese is
//!   looked up there too, by the pinyin of each of its runs of Chinese characters: the
//!   usual typo with a pinyin input method is a homophone (公积斤 for 公积金), which has the
//!   same pinyin.
//! - `grams`: every pair of adjacent Chinese characters (公积金 → 公积 积金). A query
//!   with one wrong character still shares most of its pairs with the intended title.
//!
//! Polyphonic characters take their most common reading (the `pinyin` crate's first).

use pinyin::ToPinyin;

/// True for the characters the pinyin and bigram forms are made of (CJK ideographs).
fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
}

/// The pinyin and initials of a run of Chinese characters, or `None` if a character has
/// no known reading.
pub(super) fn pinyin_of(word: &str) -> Option<(String, String)> {
    let mut full = String::new();
    let mut initials = String::new();
    for c in word.chars() {
        let p = c.to_pinyin()?;
        full.push_str(p.plain());
        initials.push_str(p.first_letter());
    }
    Some((full, initials))
}

/// The `pinyin` field's terms for the segmented words of a text: pinyin and initials of
/// every word of at least two Chinese characters.
pub(super) fn pinyin_terms(words: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in words {
        if word.chars().count() < 2 || !word.chars().all(is_han) {
            continue;
        }
        if let Some((full, initials)) = pinyin_of(word) {
            for term in [full, initials] {
                if !out.contains(&term) {
                    out.push(term);
                }
            }
        }
    }
    out
}

/// Adjacent pairs of Chinese characters in `text`, distinct, in order.
pub(super) fn bigrams(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    for c in text.chars() {
        if !is_han(c) {
            prev = None;
            continue;
        }
        if let Some(p) = prev {
            let pair: String = [p, c].into_iter().collect();
            if !out.contains(&pair) {
                out.push(pair);
            }
        }
        prev = Some(c);
    }
    out
}

/// The runs of at least two Chinese characters in `text` (a query's phrases).
pub(super) fn han_runs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if is_han(c) {
            run.push(c);
        } else {
            if run.chars().count() >= 2 {
                out.push(std::mem::take(&mut run));
            }
            run.clear();
        }
    }
    out
}

/// If the query is typed in Latin letters only (with spaces), the forms to look up in the
/// `pinyin` field: the letters joined (`gong ji jin` → `gongjijin`) and each word.
pub(super) fn latin_query_terms(text: &str) -> Vec<String> {
    let text = text.trim();
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_alphabetic() || c == ' ') {
        return Vec::new();
    }
    let lower = text.to_ascii_lowercase();
    let mut out = vec![lower.split_whitespace().collect::<String>()];
    for word in lower.split_whitespace() {
        if !out.iter().any(|t| t == word) {
            out.push(word.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pinyin_and_initials_of_words() {
        assert_eq!(
            pinyin_terms(&words(&["住房", "公积金", "a1", "金"])),
            words(&["zhufang", "zf", "gongjijin", "gjj"])
        );
        // A homophone typo has the intended word's pinyin.
        assert_eq!(pinyin_of("公积斤"), pinyin_of("公积金"));
    }

    #[test]
    fn bigrams_stay_inside_runs_of_chinese() {
        assert_eq!(bigrams("公积金A低保"), words(&["公积", "积金", "低保"]));
        assert!(bigrams("金").is_empty());
    }

    #[test]
    fn latin_queries() {
        assert_eq!(
            latin_query_terms(" Gong Ji Jin "),
            words(&["gongjijin", "gong", "ji", "jin"])
        );
        assert_eq!(latin_query_terms("gjj"), words(&["gjj"]));
        assert!(latin_query_terms("公积金").is_empty());
        assert!(latin_query_terms("2024").is_empty());
    }

    #[test]
    fn runs() {
        assert_eq!(
            han_runs("住房公积斤 明细 a 金"),
            words(&["住房公积斤", "明细"])
        );
    }
}
