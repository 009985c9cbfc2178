//! dive-compatible CI rules: `lowestEfficiency`, `highestWastedBytes`,
//! `highestUserWastedPercent`, from a `.dive-ci` YAML file or flags.

use serde::Serialize;

use crate::{Report, XrayError};

/// Rule thresholds; `None` means disabled.
#[derive(Debug, Clone, PartialEq)]
pub struct CiRules {
    /// Fail when `efficiency` is below this ratio (0–1).
    pub lowest_efficiency: Option<f64>,
    /// Fail when `wasted_bytes` is above this.
    pub highest_wasted_bytes: Option<u64>,
    /// Fail when `user_wasted_percent` (a ratio, 0–1) is above this.
    pub highest_user_wasted_percent: Option<f64>,
}

impl Default for CiRules {
    /// dive's defaults: efficiency ≥ 0.9, wasted bytes unchecked, user wasted ≤ 0.1.
    fn default() -> Self {
        CiRules {
            lowest_efficiency: Some(0.9),
            highest_wasted_bytes: None,
            highest_user_wasted_percent: Some(0.1),
        }
    }
}

/// Parses a byte size the way dive does: a number with an optional SI (`KB`, `MB`, `GB`… powers
/// of 1000, also `K`, `M`, `G`) or IEC (`KiB`, `MiB`, `GiB`… powers of 1024) unit, case-insensitive,
/// spaces allowed: `20MB`, `1.5 GiB`, `1000`.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let mult: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "p" | "pb" => 1e15,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024f64.powi(2),
        "gi" | "gib" => 1024f64.powi(3),
        "ti" | "tib" => 1024f64.powi(4),
        "pi" | "pib" => 1024f64.powi(5),
        _ => return None,
    };
    let v = num * mult;
    (v.is_finite() && v >= 0.0 && v < u64::MAX as f64).then_some(v as u64)
}

fn parse_ratio(s: &str) -> Option<f64> {
    let s = s.trim();
    let v = match s.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok()? / 100.0,
        None => s.parse::<f64>().ok()?,
    };
    (v.is_finite() && (0.0..=1.0).contains(&v)).then_some(v)
}

impl CiRules {
    /// Sets one rule from dive's key and value syntax (`disabled` turns it off).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let disabled = value.trim().eq_ignore_ascii_case("disabled");
        match key {
            "lowestEfficiency" => {
                self.lowest_efficiency = if disabled {
                    None
                } else {
                    Some(parse_ratio(value).ok_or_else(|| {
                        format!("{key}: `{value}` is not a ratio between 0 and 1")
                    })?)
                }
            }
            "highestWastedBytes" => {
                self.highest_wasted_bytes = if disabled {
                    None
                } else {
                    Some(parse_bytes(value).ok_or_else(|| {
                        format!("{key}: `{value}` is not a byte size (e.g. 20MB)")
                    })?)
                }
            }
            "highestUserWastedPercent" => {
                self.highest_user_wasted_percent = if disabled {
                    None
                } else {
                    Some(parse_ratio(value).ok_or_else(|| {
                        format!("{key}: `{value}` is not a ratio between 0 and 1")
                    })?)
                }
            }
            other => return Err(format!("unknown rule `{other}`")),
        }
        Ok(())
    }

    /// Reads a `.dive-ci` file's `rules:` map over the defaults. `path` names it in errors.
    pub fn from_dive_ci(text: &str, path: &str) -> Result<Self, XrayError> {
        let err = |message: String| XrayError::CiConfig {
            path: path.to_string(),
            message,
            source: None,
        };
        let mut rules = CiRules::default();
        if text.trim().is_empty() {
            return Ok(rules);
        }
        let doc: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| XrayError::CiConfig {
                path: path.to_string(),
                message: "not YAML".into(),
                source: Some(e),
            })?;
        let Some(map) = doc.get("rules") else {
            return Ok(rules);
        };
        let Some(map) = map.as_mapping() else {
            return Err(err("`rules` must be a mapping".into()));
        };
        for (k, v) in map {
            let key = k
                .as_str()
                .ok_or_else(|| err("rule names must be strings".into()))?;
            let value = match v {
                serde_yaml::Value::String(s) => s.clone(),
                serde_yaml::Value::Number(n) => n.to_string(),
                other => return Err(err(format!("{key}: unsupported value {other:?}"))),
            };
            rules.set(key, &value).map_err(err)?;
        }
        Ok(rules)
    }
}

/// The result of one CI rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleStatus {
    /// The image's value is within the rule's limit.
    Pass,
    /// The image's value breaks the rule's limit; `pare xray --ci` exits 1.
    Fail,
    /// The rule has no limit (disabled in the rules file); not evaluated.
    Disabled,
}

/// One rule checked against one image.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RuleOutcome {
    /// dive's rule name.
    pub rule: String,
    /// Whether the image passed.
    pub status: RuleStatus,
    /// The threshold, as a number (ratio or bytes); absent when disabled.
    pub limit: Option<f64>,
    /// The image's value.
    pub actual: f64,
    /// One line with the value and the limit (`efficiency 0.9312 (minimum 0.9)`), or `disabled`.
    pub message: String,
}

/// Checks a report against the rules.
pub fn evaluate(report: &Report, rules: &CiRules) -> Vec<RuleOutcome> {
    let mut out = Vec::new();
    let mut push = |rule: &str, limit: Option<f64>, actual: f64, fail: bool, what: String| {
        let status = match limit {
            None => RuleStatus::Disabled,
            Some(_) if fail => RuleStatus::Fail,
            Some(_) => RuleStatus::Pass,
        };
        out.push(RuleOutcome {
            rule: rule.to_string(),
            status,
            limit,
            actual,
            message: what,
        });
    };
    let eff = report.efficiency;
    let l = rules.lowest_efficiency;
    push(
        "lowestEfficiency",
        l,
        eff,
        l.is_some_and(|l| eff < l),
        match l {
            Some(l) => format!("efficiency {:.4} (minimum {l})", eff),
            None => "disabled".into(),
        },
    );
    let w = report.wasted_bytes;
    let l = rules.highest_wasted_bytes;
    push(
        "highestWastedBytes",
        l.map(|v| v as f64),
        w as f64,
        l.is_some_and(|l| w > l),
        match l {
            Some(l) => format!("wasted {w} bytes (maximum {l})"),
            None => "disabled".into(),
        },
    );
    let u = report.user_wasted_percent;
    let l = rules.highest_user_wasted_percent;
    push(
        "highestUserWastedPercent",
        l,
        u,
        l.is_some_and(|l| u > l),
        match l {
            Some(l) => format!("user wasted {:.4} (maximum {l})", u),
            None => "disabled".into(),
        },
    );
    out
}

/// Whether no rule failed.
pub fn passed(outcomes: &[RuleOutcome]) -> bool {
    outcomes.iter().all(|o| o.status != RuleStatus::Fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_like_dive() {
        assert_eq!(parse_bytes("20MB"), Some(20_000_000));
        assert_eq!(parse_bytes("20 mib"), Some(20 * 1024 * 1024));
        assert_eq!(parse_bytes("1.5GB"), Some(1_500_000_000));
        assert_eq!(parse_bytes("1000"), Some(1000));
        assert_eq!(parse_bytes("12 bananas"), None);
    }

    #[test]
    fn dive_ci_file() {
        let r = CiRules::from_dive_ci(
            "rules:\n  lowestEfficiency: 0.95\n  highestWastedBytes: 20MB\n  highestUserWastedPercent: disabled\n",
            ".dive-ci",
        )
        .unwrap();
        assert_eq!(
            r,
            CiRules {
                lowest_efficiency: Some(0.95),
                highest_wasted_bytes: Some(20_000_000),
                highest_user_wasted_percent: None
            }
        );
        let r = CiRules::from_dive_ci("rules:\n  lowestEfficiency: \"0.5\"\n", ".dive-ci").unwrap();
        assert_eq!(r.lowest_efficiency, Some(0.5));
        assert_eq!(r.highest_user_wasted_percent, Some(0.1));
        let e = CiRules::from_dive_ci("rules:\n  lowestEfficiency: 7\n", ".dive-ci").unwrap_err();
        assert!(
            e.to_string().starts_with(".dive-ci: lowestEfficiency"),
            "{e}"
        );
        assert!(CiRules::from_dive_ci("rules: [", "x").is_err());
    }
}
