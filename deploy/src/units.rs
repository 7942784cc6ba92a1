//! Parsing what people type: memory sizes (`512m`, `8g`) and durations (`60s`, `500ms`).

use std::time::Duration;

/// Parses a memory size into MiB. A bare number is MiB; suffixes k, m, g, t (optionally
/// followed by `b`/`ib`, any case) scale it. At least 1 MiB.
pub fn parse_mib(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size; use e.g. 512m, 8g or 1024 (MiB)"))?;
    let unit = unit.trim().trim_end_matches("ib").trim_end_matches('b');
    let mib = match unit {
        "" | "m" => Some(n),
        "k" => Some(n / 1024),
        "g" => n.checked_mul(1024),
        "t" => n.checked_mul(1024 * 1024),
        _ => {
            return Err(format!(
                "{s:?} has an unknown unit {unit:?}; use k, m, g or t"
            ))
        }
    }
    .ok_or_else(|| format!("{s:?} is too large"))?;
    if mib == 0 {
        return Err(format!("{s:?} is less than 1 MiB"));
    }
    Ok(mib)
}

/// Parses a duration such as `60s`, `500ms`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration ({e}); use e.g. 60s or 500ms"))
}

/// A whole number of cores, at least 1.
pub fn parse_cores(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number of cores")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_mib("512"), Ok(512));
        assert_eq!(parse_mib("512m"), Ok(512));
        assert_eq!(parse_mib("8g"), Ok(8192));
        assert_eq!(parse_mib("8GiB"), Ok(8192));
        assert_eq!(parse_mib("2048k"), Ok(2));
        assert_eq!(parse_mib("1t"), Ok(1_048_576));
        assert_eq!(
            parse_mib("banana").unwrap_err(),
            "\"banana\" is not a size; use e.g. 512m, 8g or 1024 (MiB)"
        );
        assert_eq!(parse_mib("0").unwrap_err(), "\"0\" is less than 1 MiB");
        assert_eq!(
            parse_mib("5x").unwrap_err(),
            "\"5x\" has an unknown unit \"x\"; use k, m, g or t"
        );
        assert!(parse_mib("99999999999999999999g").is_err());
    }

    /// Sizes mean what they mean to Spark and the JVM (`-Xmx512m`): units are binary and
    /// a bare number is MiB. A general-purpose byte-size parser (bytesize: `1g` = 10^9
    /// bytes, `512` = 512 bytes) would change what every existing flag and config asks for.
    #[test]
    fn sizes_are_spark_sizes() {
        assert_eq!(parse_mib("1g"), Ok(1024), "binary, not 10^9 bytes");
        assert_eq!(parse_mib("1G"), Ok(1024));
        assert_eq!(parse_mib("1gb"), Ok(1024), "gb is GiB, as in Spark");
        assert_eq!(parse_mib("10g"), Ok(10_240));
        assert_eq!(parse_mib("4g"), Ok(4096));
        assert_eq!(parse_mib("10m"), Ok(10));
        assert_eq!(parse_mib("1024"), Ok(1024), "a bare number is MiB");
        assert_eq!(parse_mib(" 512 m "), Ok(512));
        assert_eq!(parse_mib("1048576k"), Ok(1024));
        assert_eq!(
            parse_mib("1023k").unwrap_err(),
            "\"1023k\" is less than 1 MiB"
        );
        assert!(parse_mib("1.5g").is_err(), "whole numbers only");
        assert!(parse_mib("-1g").is_err());
        assert!(parse_mib("").is_err());
    }

    #[test]
    fn durations_and_cores() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_cores("4"), Ok(4));
        assert_eq!(parse_cores("0").unwrap_err(), "must be at least 1");
        assert!(parse_cores("-1").is_err());
    }
}
