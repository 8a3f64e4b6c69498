use serde::{Deserialize, Serialize};

/// An ISO-4217 alphabetic currency code that the standard lists, with its minor-unit
/// exponent. The list and the exponents come from the `iso_currency` crate (ISO 4217 as
/// published), not from a hand list: "any three capital letters" let `ABC` through as a
/// currency with two decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

impl Currency {
    /// Parses a code such as `EUR`; `None` unless ISO 4217 lists it (upper case).
    pub fn parse(code: &str) -> Option<Currency> {
        let bytes: [u8; 3] = code.as_bytes().try_into().ok()?;
        if !bytes.iter().all(u8::is_ascii_uppercase) {
            return None;
        }
        let iso = iso_currency::Currency::from_code(code)?;
        Some(Currency {
            code: bytes,
            // Codes without minor units (precious metals, SDR) have none: exponent 0.
            exponent: iso
                .exponent()
                .map_or(0, |e| u8::try_from(e).unwrap_or(u8::MAX)),
        })
    }

    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII upper-case letters.
        std::str::from_utf8(&self.code).unwrap_or("???")
    }

    /// Number of minor-unit digits (ISO-4217 exponent).
    pub fn exponent(&self) -> u8 {
        self.exponent
    }
}

impl TryFrom<String> for Currency {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Currency::parse(&value).ok_or_else(|| format!("not an ISO-4217 code: {value:?}"))
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_codes_iso_4217_lists_with_their_exponents() {
        assert_eq!(Currency::parse("EUR").map(|c| c.exponent()), Some(2));
        assert_eq!(Currency::parse("JPY").map(|c| c.exponent()), Some(0));
        assert_eq!(Currency::parse("KWD").map(|c| c.exponent()), Some(3));
        assert_eq!(Currency::parse("CLF").map(|c| c.exponent()), Some(4));
        // Three capital letters are not enough: ISO 4217 must list the code.
        for bad in ["eur", "EU", "EURO", "", "E1R", "ABC", "ZZZ"] {
            assert!(Currency::parse(bad).is_none(), "{bad} accepted");
        }
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(serde_json::to_string(&eur).unwrap(), "\"EUR\"");
        assert_eq!(serde_json::from_str::<Currency>("\"EUR\"").unwrap(), eur);
        assert!(serde_json::from_str::<Currency>("\"ABC\"").is_err());
    }
}
