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
        Masking::Plate => Value::String(if text.chars().count() >= 7 {
            keep(&text, 2, 2)
        } else {
            keep(&text, 0, 0)
        }),
    }
}

/// Two-character (复姓) surnames: a name starting with one keeps both characters.
const COMPOUND_SURNAMES: &[&str] = &[
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
    "司空", "夏侯", "轩辕", "令狐", "钟离", "澹台", "公冶", "太史", "申屠", "端木", "独孤", "南宫",
    "西门", "万俟", "闻人", "赫连", "呼延", "百里", "东郭", "濮阳", "淳于", "仲孙", "拓跋", "第五",
    "左丘", "漆雕", "公羊",
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

/// Endings of administrative units, longest first.
const UNIT_ENDS: &[&str] = &[
    "自治区",
    "自治州",
    "自治县",
    "地区",
    "省",
    "市",
    "州",
    "盟",
    "区",
    "县",
    "旗",
];
/// Place names ending like a unit that are not one (housing estates, parks, markets).
const NOT_UNITS: &[&str] = &[
    "小区",
    "社区",
    "园区",
    "校区",
    "景区",
    "工业区",
    "开发区",
    "保税区",
    "商业区",
    "街区",
    "超市",
    "菜市",
    "夜市",
    "城市",
];

/// An address is kept down to its district or county: the leading administrative
/// units (省/自治区, 市/州/盟/地区, 区/县/旗), each at most 10 characters, in order,
/// stopping after a district-level one — 江苏省南通市崇川区工农路111号 →
/// 江苏省南通市崇川区*******. Housing estates, parks and markets (小区, 园区, 超市, …) are
/// not units. An address without a recognisable unit is starred whole; one that is
/// nothing but units keeps all but the last.
fn address(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut cuts: Vec<usize> = Vec::new();
    let mut pos = 0;
    'units: while cuts.len() < 4 {
        for end in pos + 1..chars.len().min(pos + 10) {
            let unit: String = chars[pos..=end].iter().collect();
            let Some(suffix) = UNIT_ENDS.iter().find(|u| unit.ends_with(*u)) else {
                continue;
            };
            if NOT_UNITS.iter().any(|n| unit.ends_with(n))
                || (*suffix == "市" && chars.get(end + 1) == Some(&'场'))
            {
                continue;
            }
            cuts.push(end + 1);
            pos = end + 1;
            if matches!(*suffix, "区" | "县" | "旗" | "自治县") {
                break 'units;
            }
            continue 'units;
        }
        break;
    }
    while cuts.last().is_some_and(|c| *c >= chars.len()) {
        cuts.pop();
    }
    keep(s, cuts.last().copied().unwrap_or(0), 0)
}

/// A bank card number keeps its issuer prefix (6) and last 4 digits when it is long
/// enough (6222 0212 3456 7890 123 → 622202*********0123), else only the last 4;
/// spaces and dashes are dropped.
fn bank_card(s: &str) -> String {
    let digits: String = s.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    match digits.chars().count() {
        12.. => keep(&digits, 6, 4),
        8..=11 => keep(&digits, 0, 4),
        _ => keep(&digits, 0, 0),
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
        assert_eq!(m("工农路111号"), json!("*******"));
        // Estates, parks and markets are not districts.
        assert_eq!(
            m("江苏省南通市工农路88号锦绣小区"),
            json!("江苏省南通市**********")
        );
        assert_eq!(
            m("如皋市城北街道幸福小区3栋502"),
            json!("如皋市*************")
        );
        assert_eq!(m("工农路超市旁"), json!("******"));
        assert_eq!(
            m("江苏省南通市如皋市城北街道"),
            json!("江苏省南通市如皋市****")
        );
        // Never the whole value, even when it is only units.
        assert_eq!(m("南通市崇川区"), json!("南通市***"));
        assert_eq!(m("崇川区"), json!("***"));
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
