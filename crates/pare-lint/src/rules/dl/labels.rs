//! Label rules, driven by the config's label schema (`--require-label`, `--strict-labels`).

use super::State;
use crate::parse::Instruction;
use crate::rules::{finding, finding_msg, kv_pairs, rules};

rules! {
    DL3048 Style "Invalid label key.";
    DL3049 Info "Label `<label>` is missing." [config];
    DL3050 Info "Superfluous label(s) present." [config];
    DL3051 Warning "label `<label>` is empty." [config];
    DL3052 Warning "Label `<label>` is not a valid URL." [config];
    DL3053 Warning "Label `<label>` is not a valid time format - must conform to RFC3339." [config];
    DL3054 Warning "Label `<label>` is not a valid SPDX identifier." [config];
    DL3055 Warning "Label `<label>` is not a valid git hash." [config];
    DL3056 Warning "Label `<label>` does not conform to semantic versioning." [config];
    DL3058 Warning "Label `<label>` is not a valid email format - must conform to RFC5322." [config];
}

impl State<'_> {
    /// DL3049: labels of the schema that the ending stage does not set.
    pub(super) fn missing_labels(&mut self) {
        let Some(s) = self.stages.last() else { return };
        let schema = &self.cfg.label_schema;
        let from_line = s.from_line;
        let labels = s.labels.clone();
        if !schema.is_empty() || self.cfg.strict_labels {
            for key in schema.keys() {
                if !labels.iter().any(|(k, _, _)| k == key) {
                    self.out.push(finding_msg(
                        &DL3049,
                        from_line,
                        format!("Label `{key}` is missing."),
                    ));
                }
            }
        }
    }

    pub(super) fn label(&mut self, ins: &Instruction, in_onbuild: bool) {
        let line = ins.line;
        let pairs = kv_pairs(&ins.args);
        for (k, _) in &pairs {
            if !valid_label_key(k) {
                self.out.push(finding(&DL3048, line));
                break;
            }
        }
        let schema = self.cfg.label_schema.clone();
        if self.cfg.strict_labels && pairs.iter().any(|(k, _)| !schema.contains_key(k)) {
            self.out.push(finding(&DL3050, line));
        }
        for (k, v) in &pairs {
            let Some(ty) = schema.get(k) else { continue };
            if v.is_empty() {
                self.out
                    .push(finding_msg(&DL3051, line, format!("label `{k}` is empty.")));
                continue;
            }
            let (ok, code, what) = match ty.as_str() {
                "url" => (valid_url(v), &DL3052, "is not a valid URL."),
                "rfc3339" => (
                    valid_rfc3339(v),
                    &DL3053,
                    "is not a valid time format - must conform to RFC3339.",
                ),
                "spdx" => (valid_spdx(v), &DL3054, "is not a valid SPDX identifier."),
                "hash" => (valid_hash(v), &DL3055, "is not a valid git hash."),
                "semver" => (
                    valid_semver(v),
                    &DL3056,
                    "does not conform to semantic versioning.",
                ),
                "email" => (
                    valid_email(v),
                    &DL3058,
                    "is not a valid email format - must conform to RFC5322.",
                ),
                _ => (true, &DL3052, ""),
            };
            if !ok {
                self.out
                    .push(finding_msg(code, line, format!("Label `{k}` {what}")));
            }
        }
        if !in_onbuild {
            for (k, v) in pairs {
                self.stage().labels.push((k, v, line));
            }
        }
    }
}

fn valid_label_key(k: &str) -> bool {
    if k.is_empty() || k.contains('$') {
        return k.contains('$');
    }
    let reserved = ["com.docker.", "io.docker.", "org.dockerproject."];
    if reserved.iter().any(|r| k.starts_with(r)) {
        return false;
    }
    // Docker's convention, as hadolint checks it: lower-case alphanumerics, `.`, `-` (and `_`),
    // starting with a letter and ending with an alphanumeric.
    let b = k.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    b[0].is_ascii_lowercase()
        && alnum(b[b.len() - 1])
        && b.iter()
            .all(|&c| alnum(c) || c == b'.' || c == b'-' || c == b'_')
        && !k.contains("..")
        && !k.contains("--")
}

fn valid_url(v: &str) -> bool {
    match v.split_once("://") {
        Some((scheme, rest)) => {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.is_empty()
        }
        None => false,
    }
}

fn valid_rfc3339(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() < 20 {
        return false;
    }
    let d = |i: usize| b.get(i).is_some_and(|c| c.is_ascii_digit());
    let date = (0..4).all(d) && b[4] == b'-' && d(5) && d(6) && b[7] == b'-' && d(8) && d(9);
    let t = matches!(b[10], b'T' | b't' | b' ');
    let time = d(11) && d(12) && b[13] == b':' && d(14) && d(15) && b[16] == b':' && d(17) && d(18);
    let tz = v.ends_with('Z') || v.ends_with('z') || {
        let tail = &b[b.len() - 6..];
        (tail[0] == b'+' || tail[0] == b'-') && tail[3] == b':'
    };
    date && t && time && tz
}

fn valid_spdx(v: &str) -> bool {
    const IDS: &[&str] = &[
        "MIT",
        "Apache-2.0",
        "GPL-2.0",
        "GPL-2.0-only",
        "GPL-2.0-or-later",
        "GPL-3.0",
        "GPL-3.0-only",
        "GPL-3.0-or-later",
        "LGPL-2.1",
        "LGPL-2.1-only",
        "LGPL-2.1-or-later",
        "LGPL-3.0",
        "LGPL-3.0-only",
        "LGPL-3.0-or-later",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "MPL-2.0",
        "ISC",
        "AGPL-3.0",
        "AGPL-3.0-only",
        "AGPL-3.0-or-later",
        "Unlicense",
        "CC0-1.0",
        "EPL-1.0",
        "EPL-2.0",
        "Zlib",
        "BSL-1.0",
        "Artistic-2.0",
        "CDDL-1.0",
        "WTFPL",
        "0BSD",
        "Python-2.0",
        "PostgreSQL",
        "OpenSSL",
        "CC-BY-4.0",
        "CC-BY-SA-4.0",
        "EUPL-1.2",
        "MS-PL",
        "MIT-0",
        "NCSA",
        "Proprietary",
    ];
    v.split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|t| !t.is_empty() && !matches!(*t, "AND" | "OR" | "WITH"))
        .all(|t| {
            IDS.iter()
                .any(|i| i.eq_ignore_ascii_case(t.trim_end_matches('+')))
                || t.starts_with("LicenseRef-")
        })
}

fn valid_hash(v: &str) -> bool {
    (v.len() == 7 || v.len() == 40) && v.chars().all(|c| c.is_ascii_hexdigit())
}

fn valid_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn valid_email(v: &str) -> bool {
    match v.split_once('@') {
        Some((l, d)) => {
            !l.is_empty()
                && d.contains('.')
                && !d.starts_with('.')
                && !d.ends_with('.')
                && !v.contains(char::is_whitespace)
        }
        None => false,
    }
}
