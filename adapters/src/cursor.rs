//! Opaque paging cursors.
//!
//! A cursor is URL-safe base64 (no padding) of `{"r":<key>,"q":"<hash>"}`: `r` is the
//! key of the last row returned (a SQLite rowid), `q` a hash of the table and filter
//! the cursor was issued for. The hash is not a secret: a client can forge a cursor,
//! but it only moves the page start, since the filter and grant apply to every page.
//! It exists so that reusing a cursor with another query is an error instead of
//! silently skipping rows.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use yiwang_catalog::filter::Expr;

use crate::error::AdapterError;

/// Longest cursor accepted; real ones are under 60 characters.
const MAX_CURSOR_LEN: usize = 200;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    r: i64,
    q: String,
}

/// Identifies the query a cursor belongs to: FNV-1a over the table and the canonical
/// text of the filter.
pub(crate) fn query_key(table: &str, filter: Option<&Expr>) -> String {
    let filter = filter.map(ToString::to_string).unwrap_or_default();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in table.bytes().chain([0]).chain(filter.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

pub(crate) fn encode(after: i64, query_key: &str) -> String {
    let body = Body {
        r: after,
        q: query_key.to_string(),
    };
    // Serializing a struct of an integer and a string cannot fail.
    let json = serde_json::to_vec(&body).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// The row key after which the next page starts.
pub(crate) fn decode(cursor: &str, query_key: &str) -> Result<i64, AdapterError> {
    let malformed = || AdapterError::BadCursor("the cursor is malformed".to_string());
    if cursor.len() > MAX_CURSOR_LEN {
        return Err(malformed());
    }
    let json = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| malformed())?;
    let body: Body = serde_json::from_slice(&json).map_err(|_| malformed())?;
    if body.q != query_key {
        return Err(AdapterError::BadCursor(
            "the cursor was issued for another table or filter".to_string(),
        ));
    }
    Ok(body.r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_queries() {
        let key = query_key("t", None);
        let cursor = encode(42, &key);
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(decode(&cursor, &key), Ok(42));
        let filtered = yiwang_catalog::filter::parse("a = 1").unwrap();
        let other = query_key("t", Some(&filtered));
        assert!(matches!(
            decode(&cursor, &other),
            Err(AdapterError::BadCursor(_))
        ));
        for bad in ["", "x", "!!!!", "eyJyIjoxfQ", &"A".repeat(500)] {
            assert!(
                matches!(decode(bad, &key), Err(AdapterError::BadCursor(_))),
                "{bad}"
            );
        }
    }
}
