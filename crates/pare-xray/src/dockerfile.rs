//! The Dockerfile rebuilt from the image history.

use pare_image::HistoryStep;

/// Turns one history `created_by` into a Dockerfile instruction:
/// `/bin/sh -c #(nop)  ENV A=1` → `ENV A=1`; `/bin/sh -c apt-get …` → `RUN apt-get …`;
/// buildkit's `RUN |2 A=1 B=2 /bin/sh -c make # buildkit` → `RUN make`.
pub fn clean_created_by(created_by: &str) -> String {
    let mut s = created_by.trim();
    if let Some(r) = s.strip_suffix("# buildkit") {
        s = r.trim_end();
    }
    if let Some(r) = s.strip_prefix("/bin/sh -c #(nop)") {
        return tidy_nop(r.trim());
    }
    if let Some(r) = s.strip_prefix("RUN ") {
        let mut r = r.trim_start();
        // `|N ARG=v …` lists the build args in effect: N words to drop.
        if let Some(rest) = r.strip_prefix('|') {
            let (num, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Ok(n) = num.parse::<usize>() {
                r = skip_words(tail, n);
            }
        }
        let r = r.strip_prefix("/bin/sh -c ").unwrap_or(r);
        return format!("RUN {}", r.trim());
    }
    if let Some(r) = s.strip_prefix("/bin/sh -c ") {
        return format!("RUN {}", r.trim());
    }
    if let Some(r) = s.strip_prefix("|") {
        // Legacy builder with build args: `|1 A=b /bin/sh -c cmd`.
        let (num, tail) = r.split_once(' ').unwrap_or((r, ""));
        if let Ok(n) = num.parse::<usize>() {
            let rest = skip_words(tail, n);
            let rest = rest.strip_prefix("/bin/sh -c ").unwrap_or(rest);
            return format!("RUN {}", rest.trim());
        }
    }
    s.to_string()
}

/// Skips `n` space-separated `KEY=value` words (values may be quoted), or all of them when
/// there are fewer (the count comes from untrusted history: `|3333333331` must not loop).
fn skip_words(s: &str, n: usize) -> &str {
    let mut rest = s.trim_start();
    for _ in 0..n {
        if rest.is_empty() {
            break;
        }
        let mut in_quote: Option<char> = None;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match in_quote {
                Some(q) if c == q => in_quote = None,
                Some(_) => {}
                None if c == '"' || c == '\'' => in_quote = Some(c),
                None if c == ' ' => {
                    end = i;
                    break;
                }
                None => {}
            }
        }
        rest = rest[end..].trim_start();
    }
    rest
}

fn tidy_nop(s: &str) -> String {
    // Legacy builder: `CMD ["a" "b"]` (Go's %q list, no commas) → valid JSON exec form.
    for kw in ["CMD ", "ENTRYPOINT ", "SHELL ", "VOLUME "] {
        if let Some(r) = s.strip_prefix(kw) {
            let r = r.trim();
            if r.starts_with('[')
                && r.ends_with(']')
                && serde_json::from_str::<Vec<String>>(r).is_err()
            {
                let fixed = r.replace("\" \"", "\", \"");
                if serde_json::from_str::<Vec<String>>(&fixed).is_ok() {
                    return format!("{kw}{fixed}");
                }
            }
        }
    }
    // Legacy builder: `ADD file:abc… in / ` / `COPY dir:… in /app `.
    for kw in ["ADD ", "COPY "] {
        if let Some(r) = s.strip_prefix(kw) {
            if let Some((src, dst)) = r.split_once(" in ") {
                return format!("{kw}{} {}", src.trim(), dst.trim());
            }
        }
    }
    s.to_string()
}

/// One Dockerfile line per history step (empty steps included, in order).
pub fn dockerfile_from_history(steps: &[HistoryStep]) -> Vec<String> {
    steps
        .iter()
        .map(|s| {
            let c = clean_created_by(&s.created_by);
            match (
                c.is_empty(),
                s.comment
                    .as_deref()
                    .map(str::trim)
                    .filter(|c| !c.is_empty()),
            ) {
                (false, _) => c,
                (true, Some(comment)) => format!("# {comment}"),
                (true, None) => "# (no history recorded for this step)".to_string(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_history_forms() {
        assert_eq!(
            clean_created_by("/bin/sh -c #(nop)  ENV PATH=/usr/bin"),
            "ENV PATH=/usr/bin"
        );
        assert_eq!(
            clean_created_by("/bin/sh -c #(nop) ADD file:1234abc in / "),
            "ADD file:1234abc /"
        );
        assert_eq!(
            clean_created_by("/bin/sh -c apt-get update"),
            "RUN apt-get update"
        );
        assert_eq!(
            clean_created_by("RUN /bin/sh -c make -j4 # buildkit"),
            "RUN make -j4"
        );
        assert_eq!(
            clean_created_by("RUN |2 A=1 B=\"x y\" /bin/sh -c echo $A # buildkit"),
            "RUN echo $A"
        );
        assert_eq!(clean_created_by("|1 V=2 /bin/sh -c echo $V"), "RUN echo $V");
        assert_eq!(
            clean_created_by("COPY app /app # buildkit"),
            "COPY app /app"
        );
        assert_eq!(clean_created_by("CMD [\"app\"]"), "CMD [\"app\"]");
        assert_eq!(
            clean_created_by("RUN [\"/bin/true\"]"),
            "RUN [\"/bin/true\"]"
        );
        assert_eq!(
            clean_created_by("/bin/sh -c #(nop)  CMD [\"java\" \"-cp\" \"/a b\"]"),
            "CMD [\"java\", \"-cp\", \"/a b\"]"
        );
        assert_eq!(
            clean_created_by("/bin/sh -c #(nop)  CMD [\"sh\"]"),
            "CMD [\"sh\"]"
        );
    }

    #[test]
    fn huge_build_arg_counts_end_with_the_words() {
        // Found by fuzzing (fuzz/regressions/merge): the count looped billions of times.
        let t = std::time::Instant::now();
        assert_eq!(clean_created_by("|3333333331"), "RUN ");
        assert_eq!(clean_created_by("|3333333331 A=1 /bin/sh -c x"), "RUN ");
        assert_eq!(
            clean_created_by("RUN |18446744073709551615 A=1 /bin/sh -c make"),
            "RUN "
        );
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }
}
