//! COPY and ADD rules.

use super::State;
use super::instructions::is_absolute;
use crate::parse::Instruction;
use crate::rules::{finding, rules, split_words, unquote};

rules! {
    DL3020 Error "Use COPY instead of ADD for files and folders";
    DL3021 Error "COPY with more than 2 arguments requires the last argument to end with /";
    DL3022 Warning "`COPY --from` should reference a previously defined `FROM` alias";
    DL3023 Error "`COPY --from` cannot reference its own `FROM` alias";
    DL3045 Warning "`COPY` to a relative destination without `WORKDIR` set.";
    DL3067 Warning "Do not copy an entire filesystem from another stage";
}

impl State<'_> {
    pub(super) fn copy(&mut self, ins: &Instruction, in_onbuild: bool) {
        let line = ins.line;
        let args: Vec<String> = match &ins.exec {
            Some(a) => a.clone(),
            None => split_words(&ins.args).iter().map(|w| unquote(w)).collect(),
        };
        if ins.heredocs.is_empty() && args.len() > 2 {
            if let Some(last) = args.last() {
                if !last.ends_with('/') && !last.contains('$') {
                    self.out.push(finding(&DL3021, line));
                }
            }
        }
        if let Some(from) = ins.flag_value("from") {
            // In ONBUILD, `--from` names a stage of the *child* build: not checkable here.
            if !in_onbuild {
                self.check_copy_from(from, line);
            }
            if args.len() >= 2
                && args[..args.len() - 1].iter().any(|s| s == "/")
                && args.last().is_some_and(|d| d == "/")
            {
                self.out.push(finding(&DL3067, line));
            }
        }
        if let Some(dest) = args.last() {
            if args.len() >= 2 && !is_absolute(dest) && !in_onbuild && !self.workdir_set() {
                self.out.push(finding(&DL3045, line));
            }
        }
        if !in_onbuild && ins.flag("from").is_none() {
            for src in &args[..args.len().saturating_sub(1)] {
                if is_archive(src) {
                    let base = src.rsplit('/').next().unwrap_or(src).to_string();
                    self.stage().archives.push(base);
                }
            }
        }
    }

    /// DL3023 (own stage) and DL3022 (unknown stage) for `COPY --from`.
    fn check_copy_from(&mut self, from: &str, line: usize) {
        let own = self.stages.last().and_then(|s| s.alias.clone());
        if own.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(from)) {
            self.out.push(finding(&DL3023, line));
            return;
        }
        let n = self.stages.len();
        let known = self.stages[..n.saturating_sub(1)].iter().any(|s| {
            s.alias
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(from))
        });
        // A stage index must point at this or an earlier stage.
        let numeric = from.parse::<usize>().is_ok_and(|i| i < n);
        if !known && !numeric && !from.contains(':') {
            self.out.push(finding(&DL3022, line));
        }
    }

    pub(super) fn add(&mut self, ins: &Instruction) {
        let args: Vec<String> = match &ins.exec {
            Some(a) => a.clone(),
            None => split_words(&ins.args).iter().map(|w| unquote(w)).collect(),
        };
        if ins.heredocs.is_empty() && args.len() >= 2 {
            let srcs = &args[..args.len() - 1];
            if srcs.iter().any(|s| !is_url(s) && !is_archive(s)) {
                self.out.push(finding(&DL3020, ins.line));
            }
        }
    }
}

fn is_url(s: &str) -> bool {
    s.contains("://")
}

fn is_archive(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    [
        ".tar",
        ".tar.gz",
        ".tgz",
        ".tar.bz2",
        ".tbz",
        ".tbz2",
        ".tb2",
        ".tar.xz",
        ".txz",
        ".tar.zst",
        ".tzst",
        ".tar.lz",
        ".tlz",
        ".gz",
        ".bz2",
        ".xz",
        ".zst",
        ".lz",
        ".lzma",
        ".tar.lzma",
        ".z",
        ".tz",
    ]
    .iter()
    .any(|e| l.ends_with(e))
}
