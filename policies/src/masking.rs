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
        Masking::Name => Value::String(name(&text)),
        Masking::Address => Value::String(address(&text)),
        Masking::BankCard => Value::String(bank_card(&text)),
        Masking::Plate => Value::String(keep(&text, 2, 2)),
    }
}

/// Two-character (复姓) surnames: a name starting with one keeps both characters.
const COMPOUND_SURNAMES: &[&str] = &[
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
    "司空", "夏侯", "轩辕", "令狐", "钟离", "澹台", "公冶", "太史", "申屠", "端木", "独孤", "南宫",
    "西门", "万俟", "闻人", "赫连", "呼延", "百里", "东郭", "濮阳", "淳于", "单于", "仲孙", "拓跋",
    "第五", "左丘", "谷梁", "乐正", "漆雕", "公羊", "宗政", "濮阳",
];

/// A person's name keeps its surname: 张三 → 张*, 张三丰 → 张**, 欧阳修 → 欧阳*,
/// 欧阳娜娜 → 欧阳**.
fn name(s: &str) -> String {
    let n = s.chars().count();
    let surname = if n > 2 && COMPOUND_SURNAMES.iter().any(|c| s.starts_with(c)) {
        2
    } else {
        1
    };
    keep(s, surname, 0)
}

/// An address is kept down to its first district or county (区, 县, 旗; not 自治区),
/// or else its first city (市): 江苏省南通市崇川区工农路111号 → 江苏省南通市崇川区*******.
/// Without any of them, only the first 2 characters are kept.
fn address(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    // 自治区 is a province, not a district.
    let district = (1..chars.len()).find(|&i| {
        matches!(chars[i], '区' | '县' | '旗')
            && !(chars[i] == '区' && i >= 2 && chars[i - 2..i] == ['自', '治'])
    });
    let city = || (1..chars.len()).find(|&i| chars[i] == '市');
    let head = match district.or_else(city) {
        Some(i) => i + 1,
        None => 2,
    };
    if head >= chars.len() {
        // Nothing below the district: nothing personal to hide.
        return if chars.len() > 2 {
            s.to_string()
        } else {
            keep(s, 0, 0)
        };
    }
    keep(s, head, 0)
}

/// A bank card number keeps its issuer prefix (6) and last 4 digits when it is long
/// enough (6222 0212 3456 7890 123 → 622202*********0123), else only the last 4;
/// spaces and dashes are dropped.
fn bank_card(s: &str) -> String {
    let digits: String = s.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if digits.chars().count() >= 12 {
        keep(&digits, 6, 4)
    } else {
        keep(&digits, 0, 4)
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
    fn chinese_names_keep_the_whole_surname() {
        let m = |s: &str| mask(&json!(s), Masking::Name);
        assert_eq!(m("张三"), json!("张*"));
        assert_eq!(m("欧阳修"), json!("欧阳*"));
        assert_eq!(m("欧阳娜娜"), json!("欧阳**"));
        assert_eq!(m("司马相如"), json!("司马**"));
        // Two characters: surname and given name, whatever the surname.
        assert_eq!(m("欧阳"), json!("欧*"));
        assert_eq!(m("王"), json!("*"));
    }

    #[test]
    fn addresses_keep_the_district() {
        let m = |s: &str| mask(&json!(s), Masking::Address);
        assert_eq!(
            m("江苏省南通市崇川区工农路111号"),
            json!("江苏省南通市崇川区*******")
        );
        assert_eq!(m("北京市朝阳区建国路88号"), json!("北京市朝阳区******"));
        assert_eq!(
            m("内蒙古自治区锡林郭勒盟正蓝旗上都镇"),
            json!("内蒙古自治区锡林郭勒盟正蓝旗***")
        );
        assert_eq!(
            m("江苏省如皋市如城街道海阳路5号"),
            json!("江苏省如皋市*********")
        );
        assert_eq!(m("工农路111号"), json!("工农*****"));
        assert_eq!(
            m("江苏省南通市如皋市城北街道"),
            json!("江苏省南通市*******")
        );
        // Only the district: nothing below it to hide.
        assert_eq!(m("崇川区"), json!("崇川区"));
    }

    #[test]
    fn bank_cards_and_plates() {
        assert_eq!(
            mask(&json!("6222 0212 3456 7890 123"), Masking::BankCard),
            json!("622202*********0123")
        );
        assert_eq!(
            mask(&json!("62220212"), Masking::BankCard),
            json!("****0212")
        );
        assert_eq!(mask(&json!("苏F12345"), Masking::Plate), json!("苏F***45"));
        assert_eq!(
            mask(&json!("苏FD12345"), Masking::Plate),
            json!("苏F****45")
        );
    }

    #[test]
    fn short_values_are_fully_hidden() {
        assert_eq!(mask(&json!("123"), Masking::Phone), json!("***"));
        assert_eq!(mask(&json!("张"), Masking::Name), json!("*"));
        assert_eq!(mask(&json!(""), Masking::IdCard), json!("*"));
    }
}
