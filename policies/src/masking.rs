//! Field masking. Applied by the gateway to each value of a masked column before the
//! value leaves the node; the original never reaches the consumer.

use serde_json::Value;
use yiwang_catalog::model::Masking;

/// Masks one value. Nulls stay null; non-string values are masked through their text.
pub fn mask(value: &Value, rule: Masking) -> Value {
    let text = match value {
        Value::Null => return Value::Null,
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match rule {
        Masking::Null => Value::Null,
        Masking::Full => Value::String("***".into()),
        Masking::IdCard => Value::String(keep(&text, 6, 4)),
        Masking::Phone => Value::String(keep(&text, 3, 4)),
        Masking::Name => Value::String(keep(&text, 1, 0)),
        Masking::Address => Value::String(keep(&text, 6, 0)),
    }
}

/// Keeps the first `head` and last `tail` characters, replacing the rest with `*`. When
/// the value is too short to keep anything safely, all of it is replaced.
fn keep(s: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    if n <= head + tail {
        return "*".repeat(n.max(1));
    }
    let mut out: String = chars[..head].iter().collect();
    out.push_str(&"*".repeat(n - head - tail));
    out.extend(&chars[n - tail..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_common_identifiers() {
        assert_eq!(
            mask(&json!("320602198001011234"), Masking::IdCard),
            json!("320602********1234")
        );
        assert_eq!(
            mask(&json!("13812345678"), Masking::Phone),
            json!("138****5678")
        );
        assert_eq!(mask(&json!("张三丰"), Masking::Name), json!("张**"));
        assert_eq!(
            mask(
                &json!("南通市如东县洋口化学工业园黄海三路18号"),
                Masking::Address
            ),
            json!("南通市如东县**************")
        );
        assert_eq!(mask(&json!("anything"), Masking::Full), json!("***"));
        assert_eq!(mask(&json!(12345), Masking::Null), Value::Null);
        assert_eq!(mask(&Value::Null, Masking::Full), Value::Null);
    }

    #[test]
    fn short_values_are_fully_hidden() {
        assert_eq!(mask(&json!("123"), Masking::Phone), json!("***"));
        assert_eq!(mask(&json!("张"), Masking::Name), json!("*"));
        assert_eq!(mask(&json!(""), Masking::IdCard), json!("*"));
    }
}
