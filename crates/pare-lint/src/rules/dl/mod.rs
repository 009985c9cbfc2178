//! hadolint's DL rules, written from their documented meaning and checked against hadolint
//! 2.15.1's behaviour (see docs/lint-differences.md for where we deliberately differ).
//!
//! Each rule is one `const` item declared with `rules!` in the file of what it
//! checks: [`stages`] (FROM and whole-file rules), [`instructions`] (WORKDIR, USER, CMD, ENV, …),
//! [`labels`], [`copy`] (COPY and ADD) and [`run`] (RUN scripts, where each rule is its code
//! together with its check). This file walks the Dockerfile and keeps the per-stage state.

pub mod copy;
pub mod instructions;
pub mod labels;
pub mod run;
pub mod stages;

use std::collections::HashSet;

use super::{RuleInfo, finding, parse_from, run_shell};
use crate::parse::Dockerfile;
use crate::{Config, Finding};

/// The DL rule tables, one per file.
pub(crate) const GROUPS: &[&[RuleInfo]] = &[
    stages::ALL,
    instructions::ALL,
    labels::ALL,
    copy::ALL,
    run::ALL,
];

/// How many DL rules there are.
pub(crate) const N_RULES: usize = stages::ALL.len()
    + instructions::ALL.len()
    + labels::ALL.len()
    + copy::ALL.len()
    + run::ALL.len();

pub use stages::DL1000;

#[derive(Default)]
pub(crate) struct Stage {
    alias: Option<String>,
    from_line: usize,
    workdir: bool,
    healthchecks: usize,
    cmds: usize,
    entrypoints: usize,
    pipefail: bool,
    non_posix_shell: bool,
    root_user_line: Option<usize>,
    pip_no_cache_env: bool,
    labels: Vec<(String, String, usize)>,
    env_defined: HashSet<String>,
    archives: Vec<String>,
    /// RUN lines with `apt-get update` and no list cleanup (DL3009, decided at the end).
    apt_lists_lines: Vec<usize>,
    /// The FROM arguments, to compare with the last FROM.
    from_args: String,
}

pub(crate) struct State<'c> {
    cfg: &'c Config,
    out: Vec<Finding>,
    stages: Vec<Stage>,
    /// Last RUN: (flags, command count) for DL3059, `None` after any non-RUN, non-comment.
    last_run: Option<(Vec<crate::parse::Flag>, usize)>,
    used_curl: bool,
    used_wget: bool,
    has_healthcheck: bool,
}

pub(super) fn check(df: &Dockerfile, cfg: &Config, out: &mut Vec<Finding>) {
    let mut st = State {
        cfg,
        out: Vec::new(),
        stages: Vec::new(),
        last_run: None,
        used_curl: false,
        used_wget: false,
        has_healthcheck: false,
    };
    // DL1001: inline ignore pragmas.
    for c in &df.comments {
        if let Some((false, _)) = crate::parse_pragma(&c.text) {
            st.out.push(finding(&stages::DL1001, c.line));
        }
    }
    for ins in &df.instructions {
        if ins.keyword == "FROM" {
            st.end_stage();
            st.begin_stage(ins);
            st.last_run = None;
            continue;
        }
        if st.stages.is_empty() && ins.keyword != "ARG" {
            st.out.push(finding(&stages::DL3061, ins.line));
        }
        if st.stages.is_empty() {
            if ins.keyword == "ARG" {
                st.arg(ins);
            }
            continue;
        }
        if ins.keyword == "RUN" {
            let sh = run_shell(ins);
            // Like hadolint, commands whose name is an expansion (`$GOPATH/bin/x`) do not count.
            let count = sh
                .script
                .commands
                .iter()
                .filter(|c| !c.name.contains('$'))
                .count();
            if let Some((flags, prev)) = &st.last_run {
                if *flags == ins.flags && count <= 1 && *prev <= 1 {
                    st.out.push(finding(&stages::DL3059, ins.line));
                }
            }
            st.last_run = Some((ins.flags.clone(), count));
        } else {
            st.last_run = None;
        }
        st.instruction(ins, false);
        if let Some(inner) = ins.onbuild.as_deref() {
            if matches!(inner.keyword.as_str(), "FROM" | "ONBUILD" | "MAINTAINER") {
                st.out.push(finding(&stages::DL3043, ins.line));
            } else {
                st.instruction(inner, true);
            }
        }
    }
    st.end_stage();
    // DL3009 matters for the final image and for stages other stages build FROM (like hadolint:
    // a stage whose FROM line equals the last one counts as final).
    let bases: HashSet<String> = df
        .instructions
        .iter()
        .filter(|i| i.keyword == "FROM")
        .map(|i| parse_from(i).image.to_ascii_lowercase())
        .collect();
    let last_from = st
        .stages
        .last()
        .map(|s| s.from_args.clone())
        .unwrap_or_default();
    for s in &st.stages {
        let used = s
            .alias
            .as_ref()
            .is_some_and(|a| bases.contains(&a.to_ascii_lowercase()));
        if s.from_args == last_from || used {
            for &l in &s.apt_lists_lines {
                st.out.push(finding(&stages::DL3009, l));
            }
        }
    }
    if !st.has_healthcheck {
        if let Some(first) = df.instructions.iter().find(|i| i.keyword == "FROM") {
            st.out.push(finding(&stages::DL3057, first.line));
        }
    }
    out.append(&mut st.out);
}

impl State<'_> {
    fn stage(&mut self) -> &mut Stage {
        // Callers only use this after a FROM.
        let n = self.stages.len();
        &mut self.stages[n.saturating_sub(1)]
    }

    fn find_alias(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| {
            s.alias
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(name))
        })
    }

    fn workdir_set(&self) -> bool {
        self.stages.last().is_some_and(|s| s.workdir)
    }
}
