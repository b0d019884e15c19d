//! The `highlight` of a hit: a short piece of the summary (or the title) with the matched
//! terms wrapped in `<em>…</em>`, HTML-escaped otherwise so that clients can insert it as
//! markup.

use std::ops::Range;

use tantivy::Searcher;
use tantivy::query::Query;
use tantivy::snippet::SnippetGenerator;

use super::schema::Fields;

/// Longest highlight, in characters, when nothing matched and the text is just cut.
const MAX_CHARS: usize = 120;

/// tantivy measures snippet length in bytes; a CJK character is three bytes in UTF-8, so
/// this gives about [`MAX_CHARS`] characters of Chinese text.
const MAX_SNIPPET_BYTES: usize = MAX_CHARS * 3;

const PREFIX: &str = "<em>";
const POSTFIX: &str = "</em>";

/// Builds highlights for the hits of one query.
pub(super) struct Highlighter {
    /// Snippet generators for the summary and the title; absent for a query without
    /// text (nothing to highlight).
    generators: Option<(SnippetGenerator, SnippetGenerator)>,
}

impl Highlighter {
    /// Prepares snippet generation for `query`'s terms; with `enabled` false (a query
    /// without text, or no hits) highlights are the start of the summary.
    pub fn new(
        searcher: &Searcher,
        query: &dyn Query,
        fields: &Fields,
        enabled: bool,
    ) -> tantivy::Result<Highlighter> {
        if !enabled {
            return Ok(Highlighter { generators: None });
        }
        let generator = |field| -> tantivy::Result<SnippetGenerator> {
            let mut g = SnippetGenerator::create(searcher, query, field)?;
            g.set_max_num_chars(MAX_SNIPPET_BYTES);
            Ok(g)
        };
        Ok(Highlighter {
            generators: Some((generator(fields.summary)?, generator(fields.title)?)),
        })
    }

    /// The highlight for a hit: a snippet of the summary where it matches, else of the
    /// title where it matches, else the start of the summary (or of the title when the
    /// summary is empty).
    pub fn highlight(&self, title: &str, summary: &str) -> String {
        if let Some((summary_gen, title_gen)) = &self.generators {
            for (generator, text) in [(summary_gen, summary), (title_gen, title)] {
                let snippet = generator.snippet(text);
                if !snippet.is_empty() {
                    return render(text, snippet.fragment_range(), snippet.highlighted());
                }
            }
        }
        let text = if summary.trim().is_empty() {
            title
        } else {
            summary
        };
        leading(text)
    }
}

/// Renders the fragment `range` of `text` with `highlighted` (relative to the fragment
/// start) wrapped in `<em>`, and `…` where text was left out.
///
/// tantivy ends a fragment at its last word, dropping closing punctuation (`（千瓦时`);
/// when the rest of the text fits in the budget the fragment is extended to the end.
fn render(text: &str, range: Range<usize>, highlighted: &[Range<usize>]) -> String {
    let start = range.start;
    let end = if text.len() - start <= MAX_SNIPPET_BYTES {
        text.len()
    } else {
        range.end
    };
    let fragment = &text[start..end];

    // Overlapping and adjacent matches (jieba's 危险 + 危险化学品, or 危险 + 化学品)
    // become one highlighted span.
    let mut spans: Vec<Range<usize>> = highlighted.to_vec();
    spans.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(spans.len());
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => merged.push(span),
        }
    }

    let mut out = String::with_capacity(fragment.len() + 16 * merged.len() + 8);
    if start > 0 {
        out.push('…');
    }
    let mut at = 0;
    for span in merged {
        out.push_str(&escape_html(&fragment[at..span.start]));
        out.push_str(PREFIX);
        out.push_str(&escape_html(&fragment[span.clone()]));
        out.push_str(POSTFIX);
        at = span.end;
    }
    out.push_str(&escape_html(&fragment[at..]));
    if end < text.len() {
        out.push('…');
    }
    out
}

/// The first [`MAX_CHARS`] characters of `text`, HTML-escaped, with `…` when cut.
fn leading(text: &str) -> String {
    let trimmed = text.trim();
    let cut = trimmed.char_indices().nth(MAX_CHARS).map(|(i, _)| i);
    let mut out = escape_html(&trimmed[..cut.unwrap_or(trimmed.len())]);
    if cut.is_some() {
        out.push('…');
    }
    out
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{MAX_CHARS, leading, render};

    #[test]
    fn leading_escapes_and_cuts() {
        assert_eq!(leading(" a<b> "), "a&lt;b&gt;");
        let long = "数".repeat(MAX_CHARS + 5);
        let out = leading(&long);
        assert_eq!(out.chars().count(), MAX_CHARS + 1);
        assert!(out.ends_with('…'));
    }

    #[test]
    fn render_merges_adjacent_spans_and_keeps_the_tail() {
        let text = "企业危险化学品（清单）。";
        let wei = "企业".len();
        let hua = wei + "危险".len();
        let pin = hua + "化学品".len();
        // Fragment cut after the last word, as tantivy does.
        let out = render(text, 0..pin, &[wei..hua, hua..pin, wei..pin]);
        assert_eq!(out, "企业<em>危险化学品</em>（清单）。");
    }

    #[test]
    fn render_marks_left_out_text() {
        let text = format!("{}企业{}", "前".repeat(200), "后".repeat(200));
        let start = "前".len() * 190;
        let hit = "前".len() * 200;
        let end = hit + "企业".len() + "后".len() * 10;
        let span = hit - start..hit - start + "企业".len();
        let out = render(&text, start..end, std::slice::from_ref(&span));
        assert!(out.starts_with('…') && out.ends_with('…'), "{out}");
        assert!(out.contains("<em>企业</em>"), "{out}");
    }
}
