//! Value detectors: recognise a sensitive value by its shape and check digits, wherever in a
//! string it appears. Built in: `us_ssn`, `card`, `iban`; an operator adds named regexes.

use std::sync::OnceLock;

use regex::Regex;

/// The names of the built-in detectors, as a tenant's config writes them.
pub const BUILTIN: [&str; 3] = ["us_ssn", "card", "iban"];

/// One compiled detector.
#[derive(Clone, Debug)]
pub struct Detector {
    name: String,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    UsSsn,
    Card,
    Iban,
    Custom(Regex),
}

impl Detector {
    /// A built-in detector by its name.
    pub fn builtin(name: &str) -> Option<Self> {
        let kind = match name {
            "us_ssn" => Kind::UsSsn,
            "card" => Kind::Card,
            "iban" => Kind::Iban,
            _ => return None,
        };
        Some(Self {
            name: name.to_owned(),
            kind,
        })
    }

    /// A named regular expression; the error is the `regex` crate's message.
    pub fn custom(name: &str, pattern: &str) -> Result<Self, String> {
        let re = Regex::new(pattern).map_err(|e| e.to_string())?;
        Ok(Self {
            name: name.to_owned(),
            kind: Kind::Custom(re),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// What a hit means, for refusal messages (never the value itself).
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::UsSsn => "a US social security number".to_owned(),
            Kind::Card => "a payment card number".to_owned(),
            Kind::Iban => "an IBAN".to_owned(),
            Kind::Custom(_) => format!("a value of the {:?} pattern", self.name),
        }
    }

    /// Whether `text` holds a value of this kind anywhere in it.
    pub fn finds(&self, text: &str) -> bool {
        match &self.kind {
            Kind::UsSsn => has_us_ssn(text),
            Kind::Card => has_card(text),
            Kind::Iban => has_iban(text),
            Kind::Custom(re) => re.is_match(text),
        }
    }
}

fn cached(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("built-in detector patterns are valid"))
}

/// `AAA-GG-SSSS` or `AAA GG SSSS` (one separator, used twice), not inside a longer run of
/// digits or letters, without the never-issued area numbers 000, 666 and 900–999, group 00 or
/// serial 0000 (SSA, "Social Security Number Randomization"). Nine bare digits are not taken
/// for an SSN: too many identifiers (phone numbers, employee and order numbers) look the same.
fn has_us_ssn(text: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = cached(
        &RE,
        r"(?-u:\b)(?:([0-9]{3})-([0-9]{2})-([0-9]{4})|([0-9]{3}) ([0-9]{2}) ([0-9]{4}))(?-u:\b)",
    );
    re.captures_iter(text).any(|c| {
        let part = |a: usize, b: usize| c.get(a).or_else(|| c.get(b)).map_or("", |m| m.as_str());
        let (area, group, serial) = (part(1, 4), part(2, 5), part(3, 6));
        area != "000"
            && area != "666"
            && !area.starts_with('9')
            && group != "00"
            && serial != "0000"
    })
}

/// 13–19 digits, optionally in groups separated by one space or dash, that pass the Luhn check
/// (ISO/IEC 7812-1). A run of groups is tried at every group boundary, so a card number
/// followed by more digits (`4111 1111 1111 1111 12/27`) is still found. The first digit must
/// be 2–6, the major industry identifiers of the card networks (Mastercard 2-series, Amex,
/// Diners and JCB, Visa, Mastercard and Maestro, Discover and UnionPay): this keeps 13-digit
/// epoch milliseconds and long phone numbers, one in ten of which pass Luhn, from counting.
fn has_card(text: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = cached(&RE, r"(?-u:\b)[0-9]+(?:[ -][0-9]+)*(?-u:\b)");
    re.find_iter(text).any(|run| {
        let groups: Vec<&str> = run.as_str().split([' ', '-']).collect();
        (0..groups.len()).any(|start| {
            let mut digits = String::with_capacity(19);
            for g in &groups[start..] {
                digits.push_str(g);
                match digits.len() {
                    // Stopping here keeps a long run of short groups linear.
                    20.. => return false,
                    13.. if looks_like_card(&digits) => return true,
                    _ => {}
                }
            }
            false
        })
    })
}

fn looks_like_card(digits: &str) -> bool {
    let bytes = digits.as_bytes();
    (b'2'..=b'6').contains(&bytes[0]) && bytes.iter().any(|&b| b != bytes[0]) && luhn(bytes)
}

/// The Luhn mod-10 check over ASCII digits.
fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &b)| {
            let d = u32::from(b - b'0');
            match (i % 2 == 1, d * 2) {
                (true, dd) if dd > 9 => dd - 9,
                (true, dd) => dd,
                (false, _) => d,
            }
        })
        .sum();
    sum % 10 == 0
}

/// A country code with its IBAN length (ISO 13616, SWIFT IBAN registry), two check digits and
/// the BBAN, printed with or without single spaces, passing the mod-97 check. Knowing each
/// country's length keeps the words that follow an IBAN out of it and rules out most codes
/// that merely look like one.
fn has_iban(text: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = cached(&RE, r"(?i)(?-u:\b)[a-z]{2}[0-9]{2}");
    re.find_iter(text).any(|m| {
        let country = m.as_str()[..2].to_ascii_uppercase();
        iban_length(&country).is_some_and(|len| iban_at(&text[m.start()..], len))
    })
}

/// Whether `text` starts with an IBAN of `len` characters followed by no letter or digit.
fn iban_at(text: &str, len: usize) -> bool {
    let mut chars: Vec<u8> = Vec::with_capacity(len);
    let mut bytes = text.bytes().peekable();
    while chars.len() < len {
        match bytes.next() {
            Some(b) if b.is_ascii_alphanumeric() => chars.push(b.to_ascii_uppercase()),
            Some(b' ')
                if !chars.is_empty() && bytes.peek().is_some_and(u8::is_ascii_alphanumeric) => {}
            _ => return false,
        }
    }
    let ends = !bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    ends && chars[2..4].iter().all(u8::is_ascii_digit) && mod97(&chars) == 1
}

/// ISO 7064 MOD 97-10 over the rearranged IBAN (first four characters moved to the end,
/// letters as 10–35), computed digit by digit so no big integer is needed.
fn mod97(iban: &[u8]) -> u32 {
    let (head, tail) = iban.split_at(4);
    tail.iter().chain(head).fold(0, |acc, &b| {
        let v = if b.is_ascii_digit() {
            u32::from(b - b'0')
        } else {
            u32::from(b - b'A') + 10
        };
        if v >= 10 {
            (acc * 100 + v) % 97
        } else {
            (acc * 10 + v) % 97
        }
    })
}

/// IBAN length by country (SWIFT IBAN registry): country code and length, space-separated.
const IBAN_LENGTHS: &str = "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 \
    CR22 CY28 CZ24 DE22 DJ27 DK18 DO28 EE20 EG29 ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 \
    GR27 GT28 HR21 HU28 IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 \
    LY25 MC27 MD24 ME22 MK19 MN20 MR27 MT31 MU30 NI28 NL18 NO15 OM23 PK24 PL28 PS29 PT25 QA29 \
    RO24 RS22 RU33 SA24 SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25 SV28 TL23 TN24 TR26 UA29 VA22 \
    VG24 XK20";

fn iban_length(country: &str) -> Option<usize> {
    IBAN_LENGTHS
        .split_ascii_whitespace()
        .find_map(|entry| entry.strip_prefix(country)?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finds(name: &str, text: &str) -> bool {
        Detector::builtin(name).expect("built-in").finds(text)
    }

    #[test]
    fn ssn_with_dashes_or_spaces_is_found_even_inside_text() {
        for yes in [
            "078-05-1120",
            "123-45-6789",
            "219 09 9999",
            "SSN: 536-22-1234.",
        ] {
            assert!(finds("us_ssn", yes), "{yes}");
        }
    }

    #[test]
    fn ssn_never_issued_numbers_and_other_shapes_are_not() {
        for no in [
            "000-12-3456", // area 000
            "666-12-3456", // area 666
            "912-34-5678", // 9xx: ITINs and never issued
            "123-00-4567", // group 00
            "123-45-0000", // serial 0000
            "123456789",   // bare digits: too many look-alikes
            "123-45 6789", // mixed separators
            "1123-45-6789",
            "123-45-67890",
            "2024-01-15",
            "+1 415-555-0100",
        ] {
            assert!(!finds("us_ssn", no), "{no}");
        }
    }

    #[test]
    fn card_test_numbers_pass_in_any_grouping() {
        for yes in [
            "4111 1111 1111 1111",
            "4111111111111111",
            "4111-1111-1111-1111",
            "5555 5555 5555 4444", // Mastercard
            "2223 0031 2200 3222", // Mastercard 2-series
            "3782 822463 10005",   // Amex, 15 digits
            "6011 1111 1111 1117", // Discover
            "4222222222222",       // Visa, 13 digits
            "6200000000000005",    // UnionPay
            "card 4111 1111 1111 1111 exp 12/27",
            "4111 1111 1111 1111 12",
        ] {
            assert!(finds("card", yes), "{yes}");
        }
    }

    #[test]
    fn card_look_alikes_are_not() {
        for no in [
            "4111 1111 1111 1112",  // Luhn fails
            "1700000000005",        // 13-digit epoch milliseconds shape, starts with 1
            "0000 0000 0000 0000",  // all zeros pass Luhn
            "4111 1111 1111",       // 12 digits
            "41111111111111111111", // 20 bare digits: not a card
            "4111  1111 1111 1111", // two spaces split the run
            "+1 415 555 0100",
            "ID4111111111111111",
        ] {
            assert!(!finds("card", no), "{no}");
        }
    }

    #[test]
    fn a_long_run_of_digit_groups_is_scanned_quickly() {
        let run = "1 ".repeat(100_000);
        assert!(!finds("card", &run));
        assert!(finds("card", &format!("{run}4111 1111 1111 1111")));
    }

    #[test]
    fn luhn_checks_digits() {
        assert!(luhn(b"79927398713"));
        assert!(!luhn(b"79927398710"));
    }

    #[test]
    fn iban_examples_pass_with_or_without_spaces() {
        for yes in [
            "GB82 WEST 1234 5698 7654 32",
            "GB82WEST12345698765432",
            "DE89 3704 0044 0532 0130 00",
            "FR14 2004 1010 0505 0001 3M02 606",
            "NL91ABNA0417164300",
            "NO9386011117947",
            "gb82 west 1234 5698 7654 32",
            "pay to GB82 WEST 1234 5698 7654 32 GBP please",
            "DE89 3704 0044 0532 0130 00 1", // a space ends the IBAN; what follows is not it
        ] {
            assert!(finds("iban", yes), "{yes}");
        }
    }

    #[test]
    fn iban_look_alikes_are_not() {
        for no in [
            "GB82 WEST 1234 5698 7654 33", // check digits fail
            "GB82WEST123456987654321",     // one character too many
            "GB82WEST1234569876543",       // one too few
            "XX82WEST12345698765432",      // no such country
            "AB12",
        ] {
            assert!(!finds("iban", no), "{no}");
        }
    }

    #[test]
    fn custom_detectors_match_their_regex_anywhere_unless_anchored() {
        let badge = Detector::custom("badge", "^B-[0-9]{6}$").expect("valid");
        assert!(badge.finds("B-123456"));
        assert!(!badge.finds("badge B-123456"));
        assert!(badge.describe().contains("badge"));
        assert!(Detector::custom("bad", "(").is_err());
        assert!(Detector::builtin("passport").is_none());
    }
}
