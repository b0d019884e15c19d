//! The demo's random generator and the people and identification numbers it draws.

use super::data::date;
use super::names::{GIVEN_NAMES, PHONE_PREFIXES, SURNAMES};

/// xorshift64*: tiny, fast and the same everywhere.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (the modulo bias is irrelevant here).
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub(super) fn between(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below((hi - lo + 1) as usize) as u32
    }

    /// Uniform in `[lo, hi)`.
    pub(super) fn real(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next() >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo)
    }

    pub(super) fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    pub(super) fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
}

pub(super) struct Person {
    pub name: String,
    pub id_no: String,
    pub phone: String,
}

impl Person {
    pub(super) fn new(rng: &mut Rng, county: &str) -> Person {
        let surname = SURNAMES[rng.below(SURNAMES.len())];
        let given = GIVEN_NAMES[rng.below(GIVEN_NAMES.len())];
        let birth = date(
            rng.between(1962, 1998),
            rng.between(1, 12),
            rng.between(1, 28),
        );
        let body = format!("{county}{}{}", birth.replace('-', ""), rng.digits(3));
        Person {
            name: format!("{surname}{given}"),
            id_no: format!("{body}{}", id_check(&body)),
            phone: format!(
                "{}{}",
                PHONE_PREFIXES[rng.below(PHONE_PREFIXES.len())],
                rng.digits(8)
            ),
        }
    }
}

/// Check character of an 18-digit resident ID number (GB 11643, ISO 7064 MOD 11-2).
fn id_check(body17: &str) -> char {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body17
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    char::from(b"10X98765432"[(sum % 11) as usize])
}

/// Characters of a unified social credit code (GB 32100), in value order.
pub(super) const USCC_CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Check character of a unified social credit code (GB 32100).
pub(super) fn uscc_check(body17: &str) -> char {
    const WEIGHTS: [usize; 17] = [
        1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
    ];
    let sum: usize = body17
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| USCC_CHARS.iter().position(|&c| c == b).unwrap_or(0) * w)
        .sum();
    char::from(USCC_CHARS[(31 - sum % 31) % 31])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_characters_follow_the_standards() {
        // Published examples of GB 11643 and GB 32100.
        assert_eq!(id_check("11010519491231002"), 'X');
        assert_eq!(uscc_check("91350100M000100Y4"), '3');
    }
}
