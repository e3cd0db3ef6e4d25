//! The validity period of a DER certificate, read with a minimal DER walk
//! (`airlock status` shows when the CA expires; a full X.509 parser is not
//! worth a dependency for two fields).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `notAfter` of `der`, or `None` when it is not a certificate shaped as
/// RFC 5280 says.
pub(super) fn not_after(der: &[u8]) -> Option<SystemTime> {
    let (cert, _) = element(der, SEQUENCE)?;
    let (mut tbs, _) = element(cert, SEQUENCE)?;
    // version [0] EXPLICIT is optional (absent means v1).
    if tbs.first() == Some(&0xa0) {
        tbs = element(tbs, 0xa0)?.1;
    }
    let (_, rest) = element(tbs, INTEGER)?; // serialNumber
    let (_, rest) = element(rest, SEQUENCE)?; // signature algorithm
    let (_, rest) = element(rest, SEQUENCE)?; // issuer
    let (validity, _) = element(rest, SEQUENCE)?;
    let (_, rest) = time(validity)?; // notBefore
    time(rest).map(|(t, _)| t)
}

const INTEGER: u8 = 0x02;
const SEQUENCE: u8 = 0x30;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The contents of the element at the start of `input` if its tag is
/// `tag`, and what follows it.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn time(input: &[u8]) -> Option<(SystemTime, &[u8])> {
    let (text, rest, year) = match *input.first()? {
        UTC_TIME => {
            let (t, rest) = element(input, UTC_TIME)?;
            // RFC 5280 4.1.2.5.1: YY >= 50 is 19YY, else 20YY.
            let yy = digits(t.get(..2)?)?;
            (
                t.get(2..)?,
                rest,
                if yy >= 50 { 1900 + yy } else { 2000 + yy },
            )
        }
        GENERALIZED_TIME => {
            let (t, rest) = element(input, GENERALIZED_TIME)?;
            (t.get(4..)?, rest, digits(t.get(..4)?)?)
        }
        _ => return None,
    };
    if text.len() != 11 || text[10] != b'Z' {
        return None;
    }
    let field = |i: usize| digits(&text[i..i + 2]);
    let month = time::Month::try_from(u8::try_from(field(0)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(year).ok()?,
        month,
        u8::try_from(field(2)?).ok()?,
    )
    .ok()?;
    let at = date
        .with_hms(
            u8::try_from(field(4)?).ok()?,
            u8::try_from(field(6)?).ok()?,
            u8::try_from(field(8)?).ok()?,
        )
        .ok()?
        .assume_utc()
        .unix_timestamp();
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(at).ok()?);
    Some((at, rest))
}

fn digits(d: &[u8]) -> Option<u32> {
    d.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_not_after_of_a_generated_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["a.test".into()]).unwrap();
        let when = UNIX_EPOCH + Duration::from_secs(1_900_000_000); // 2030-03-17 17:46:40 UTC
        params.not_after = when.into();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(not_after(cert.der()), Some(when));
        // After 2049, X.509 switches to GeneralizedTime.
        let later = UNIX_EPOCH + Duration::from_secs(2_600_000_000); // 2052
        params.not_after = later.into();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(not_after(cert.der()), Some(later));
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(&[0x30, 0x82, 0xff]), None);
        assert_eq!(not_after(&[0x30, 0x03, 0x02, 0x01, 0x00]), None);
    }
}
