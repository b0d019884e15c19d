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

/// Longest run of syllables (or initials) joined into one lookup term.
const MAX_RUN: usize = 8;

/// Most lookup terms one Latin query produces.
const MAX_LATIN_TERMS: usize = 48;

/// If the query is typed in Latin letters only (with spaces), the terms to look up in
/// the `pinyin` field, each with its length in syllables or letters (longer runs say
/// more and weigh more).
///
/// The index holds one term per word (`diandong`, `zixingche`, `ddzxc` is not there), and
/// the clerk's spaces need not fall between words. So the letters are split into pinyin
/// syllables (`diandongzixingche` → dian dong zi xing che) and every run of two or more
/// adjacent syllables is a term (`diandong`, `zixingche`, …). Letters that are not
/// pinyin are taken as initials (`ddzxc`, `gjj`), and every run of three or more letters
/// is a term (`zxc`, `gjj`, …; two letters only when that is the whole query).
pub(super) fn latin_query_terms(text: &str) -> Vec<(String, usize)> {
    let text = text.trim();
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_alphabetic() || c == ' ') {
        return Vec::new();
    }
    let lower = text.to_ascii_lowercase();
    let letters: String = lower.split_whitespace().collect();
    let syllables = lower
        .split_whitespace()
        .map(syllabify)
        .collect::<Option<Vec<Vec<&str>>>>();
    let initials = syllables.is_none();
    let units: Vec<&str> = match syllables {
        Some(words) => words.into_iter().flatten().collect(),
        None => (0..letters.len()).map(|i| &letters[i..i + 1]).collect(),
    };
    // Two initials match a great many words (most words have two characters): runs of
    // initials start at three letters, unless that is all the clerk typed.
    let shortest = if initials && units.len() > 2 { 3 } else { 2 };
    let mut out: Vec<(String, usize)> = Vec::new();
    let push = |term: String, len: usize, out: &mut Vec<(String, usize)>| {
        if out.len() < MAX_LATIN_TERMS && !out.iter().any(|(t, _)| *t == term) {
            out.push((term, len));
        }
    };
    // Longest runs first, so that a capped list keeps the most telling terms.
    for len in (shortest..=units.len().min(MAX_RUN)).rev() {
        for start in 0..=units.len() - len {
            push(units[start..start + len].concat(), len, &mut out);
        }
    }
    // One syllable or letter alone matches too much; a whole word typed is kept.
    if units.len() == 1 {
        push(letters, 1, &mut out);
    }
    out
}

/// Every toneless pinyin syllable (about 400), from the readings of the CJK ideographs.
fn syllables() -> &'static std::collections::HashSet<&'static str> {
    static SYLLABLES: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    SYLLABLES.get_or_init(|| {
        ('\u{4E00}'..='\u{9FFF}')
            .filter_map(|c| c.to_pinyin())
            .map(|p| p.plain())
            .filter(|p| p.chars().all(|c| c.is_ascii_lowercase()))
            .collect()
    })
}

/// Longest word (in letters) split into syllables; longer words are not pinyin anyone
/// types.
const MAX_SYLLABIFY_LETTERS: usize = 64;

/// Splits lowercase letters into pinyin syllables, preferring long syllables (`xian`
/// over `xi an`) but backtracking when that leaves letters over; `None` if the letters
/// are not pinyin. Positions from which no split exists are remembered, so the work is
/// linear in the length (a crafted `xianxian…q` cannot make it exponential).
fn syllabify(word: &str) -> Option<Vec<&str>> {
    split_syllables(word).0
}

/// [`syllabify`], and how many positions it tried (for the test of its bound).
fn split_syllables(word: &str) -> (Option<Vec<&str>>, usize) {
    struct Split<'a> {
        word: &'a str,
        dead: Vec<bool>,
        out: Vec<&'a str>,
        steps: usize,
    }
    fn go(s: &mut Split<'_>, at: usize) -> bool {
        s.steps += 1;
        if at == s.word.len() {
            return true;
        }
        if s.dead[at] {
            return false;
        }
        for len in (1..=(s.word.len() - at).min(6)).rev() {
            let head = &s.word[at..at + len];
            if syllables().contains(head) {
                s.out.push(head);
                if go(s, at + len) {
                    return true;
                }
                s.out.pop();
            }
        }
        s.dead[at] = true;
        false
    }
    if word.len() > MAX_SYLLABIFY_LETTERS || !word.is_ascii() {
        return (None, 0);
    }
    let mut s = Split {
        word,
        dead: vec![false; word.len()],
        out: Vec::new(),
        steps: 0,
    };
    let found = go(&mut s, 0);
    (found.then_some(s.out), s.steps)
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
        let terms =
            |q: &str| -> Vec<String> { latin_query_terms(q).into_iter().map(|(t, _)| t).collect() };
        // Spaces anywhere, or none: the syllables' runs include the indexed words.
        for q in [
            "diandongzixingche",
            " Dian Dong zi xing che ",
            "diandong zixingche",
        ] {
            let t = terms(q);
            assert!(t.contains(&"diandong".to_string()), "{q}: {t:?}");
            assert!(t.contains(&"zixingche".to_string()), "{q}: {t:?}");
            assert_eq!(t[0], "diandongzixingche", "{q}: longest run first");
        }
        assert_eq!(terms("gongjijin")[0], "gongjijin");
        // Not pinyin: initials, every run of two or more letters.
        let t = terms("ddzxc");
        assert!(
            t.contains(&"zxc".to_string()) && !t.contains(&"dd".to_string()),
            "{t:?}"
        );
        assert_eq!(terms("gjj"), words(&["gjj"]));
        assert_eq!(terms("sb"), words(&["sb"]));
        // A single syllable is kept whole.
        assert_eq!(terms("che"), words(&["che"]));
        assert!(terms("公积金").is_empty());
        assert!(terms("2024").is_empty());
        assert!(latin_query_terms(&"a".repeat(200)).len() <= MAX_LATIN_TERMS);
    }

    #[test]
    fn syllables_split_with_backtracking() {
        assert_eq!(syllabify("xian"), Some(vec!["xian"]));
        assert_eq!(
            syllabify("zhufanggongjijin"),
            Some(vec!["zhu", "fang", "gong", "ji", "jin"])
        );
        // The longest first syllable `gang` leaves `an`; fine. `xianguan` needs no
        // backtracking either; `zhuangan` does: `zhuang` leaves `an`, a syllable.
        assert_eq!(syllabify("gangan"), Some(vec!["gang", "an"]));
        // `shengou`: `sheng` leaves `ou` (a syllable); `fangan`: `fang` + `an`.
        assert_eq!(syllabify("fangan"), Some(vec!["fang", "an"]));
        assert_eq!(syllabify("gjj"), None);
    }

    #[test]
    fn crafted_input_is_split_in_linear_time() {
        // Many ways to split `xian`, and no split at all because of the final `q`:
        // without remembering dead ends this explores 2^15 and more splits.
        let word = format!("{}q", "xian".repeat(15));
        let (split, steps) = split_syllables(&word);
        assert_eq!(split, None);
        // Each position is entered at most once per syllable length that reaches it.
        assert!(
            steps <= 6 * word.len() + 1,
            "{steps} steps for {} letters",
            word.len()
        );
        assert!(!latin_query_terms(&word).is_empty(), "taken as initials");
        assert_eq!(syllabify(&"xian".repeat(16)).map(|s| s.len()), Some(16));
        // Longer words are not split at all.
        assert_eq!(split_syllables(&"xian".repeat(17)).1, 0);
    }
}
